import { join } from "node:path"

/**
 * Every file and directory the program writes under its data directory, in one place:
 *
 *   <root>/base/             cached and converted images, shared by every VM
 *   <root>/base/downloads/   partial downloads and their metadata
 *   <root>/vms/<name>/       one VM: disks, seed, firmware variables, TPM state, lock
 *   <root>/state/            program state: KVM probe result, certificates, run records
 */
export interface Layout {
  readonly root: string
  readonly baseDir: string
  readonly downloadsDir: string
  readonly vmsDir: string
  readonly vmDir: string
  readonly stateDir: string
  readonly workDisk: string
  readonly extraDisk: (index: number) => string
  readonly seedIso: string
  readonly nvram: string
  readonly tpmDir: string
  readonly lockFile: string
  readonly uuidFile: string
  readonly installedMarker: string
  readonly domainXml: string
  readonly serialLog: string
  readonly bootReport: string
  readonly runRecord: string
  readonly kvmProbe: string
  readonly certsDir: string
}

export const makeLayout = (root: string, vmName: string): Layout => {
  const baseDir = join(root, "base")
  const vmsDir = join(root, "vms")
  const vmDir = join(vmsDir, vmName)
  const stateDir = join(root, "state")
  return {
    root,
    baseDir,
    downloadsDir: join(baseDir, "downloads"),
    vmsDir,
    vmDir,
    stateDir,
    workDisk: join(vmDir, "disk.qcow2"),
    extraDisk: (index) => join(vmDir, `disk${index}.qcow2`),
    seedIso: join(vmDir, "seed.iso"),
    nvram: join(vmDir, "nvram.fd"),
    tpmDir: join(vmDir, "tpm"),
    lockFile: join(vmDir, ".lock"),
    uuidFile: join(vmDir, "uuid"),
    installedMarker: join(vmDir, ".installed"),
    domainXml: join(vmDir, "domain.xml"),
    serialLog: join(vmDir, "serial.log"),
    bootReport: join(stateDir, "boot-reports", `${vmName}.json`),
    runRecord: join(stateDir, "running", `${vmName}.json`),
    kvmProbe: join(stateDir, "kvm-probe.json"),
    certsDir: join(stateDir, "certs")
  }
}

/** The built-in data directory when neither `DATA_DIR` nor a `/data` volume is present. */
export const defaultDataRoot = "/var/lib/vm-runner"
