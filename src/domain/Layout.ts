import { join } from "node:path"

/**
 * Every file and directory the program writes under its data directory, in one place:
 *
 *   <root>/base/             cached and converted images, shared by every VM
 *   <root>/base/downloads/   partial downloads and their metadata
 *   <root>/vms/<name>/       one VM: disks, seed, firmware variables, TPM state, lock
 *   <root>/state/            program state: boot reports, certificates
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
    certsDir: join(stateDir, "certs")
  }
}

/** The built-in data directory when neither `DATA_DIR` nor a `/data` volume is present. */
export const defaultDataRoot = "/var/lib/vm-runner"

/**
 * The image cache under `<root>/base`, shared by every VM. `key` is a hash of the source: its
 * URL, or a local file's path and identity.
 *
 *   base/<stem>-<digest>.qcow2, .iso   published images: read-only and never replaced, because
 *                                      work disks are qcow2 overlays that name them as backing;
 *                                      <digest> starts the download's sha256, or is
 *                                      `local-<key>` for a converted local file
 *   base/index/<key>.json              per source URL: the server's validators, the digest,
 *                                      and which published image it produced
 *   base/downloads/<key>-<name>        a verified download, until it is published
 *   base/downloads/<key>-<name>.part   a partial download; `.part.json` holds its validators
 *   base/downloads/<key>.lock          locked while one process fetches or converts the source
 *   base/downloads/<key>.work/         scratch space for unpacking and converting
 */
export interface ImageCacheLayout {
  readonly imagesDir: string
  readonly indexDir: string
  readonly downloadsDir: string
  readonly image: (fileName: string) => string
  readonly index: (key: string) => string
  readonly download: (key: string, name: string) => string
  readonly lock: (key: string) => string
  readonly workDir: (key: string) => string
}

export const makeImageCacheLayout = (root: string): ImageCacheLayout => {
  const imagesDir = join(root, "base")
  const indexDir = join(imagesDir, "index")
  const downloadsDir = join(imagesDir, "downloads")
  return {
    imagesDir,
    indexDir,
    downloadsDir,
    image: (fileName) => join(imagesDir, fileName),
    index: (key) => join(indexDir, `${key}.json`),
    download: (key, name) => join(downloadsDir, `${key}-${name}`),
    lock: (key) => join(downloadsDir, `${key}.lock`),
    workDir: (key) => join(downloadsDir, `${key}.work`)
  }
}
