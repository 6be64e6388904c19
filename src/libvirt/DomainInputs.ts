import type { DiskCache, DiskIo, VmConfig } from "../domain/Config.ts"

/** CPU vendor facts that decide the Hyper-V enlightenments a host can offer. */
export interface HostCpu {
  readonly vendor: "amd" | "intel" | "other"
  /** The `flags` and `vmx flags` of /proc/cpuinfo. */
  readonly flags: ReadonlySet<string>
}

export interface FirmwareFiles {
  /** Read-only code image, such as /usr/share/OVMF/OVMF_CODE_4M.fd. */
  readonly loader: string
  /** Template libvirt copies to `nvram` when that file does not exist yet. */
  readonly varsTemplate: string
  /** The VM's own UEFI variable store, kept in the VM directory. */
  readonly nvram: string
  readonly secureBoot: boolean
}

/**
 * Everything besides the configuration that decides the domain XML. The launch plan fills it
 * from host probes and prepared files; `--show-xml` fills it the same way without writing.
 */
export interface DomainInputs {
  readonly config: VmConfig
  /** Stable per VM, so libvirt keeps TPM state under the same directory across runs. */
  readonly uuid: string
  /** `kvm` when a KVM probe ran a guest; `tcg` otherwise. */
  readonly accel: "kvm" | "tcg"
  readonly workDisk: { readonly path: string; readonly format: "qcow2" | "raw" }
  readonly extraDisks: ReadonlyArray<{ readonly index: number; readonly path: string }>
  /** NoCloud seed ISO, when cloud-init is on. */
  readonly seedIso: string | undefined
  /** Installer ISO from `BOOT_FROM`, when one is attached this run. */
  readonly installIso: string | undefined
  /** Effective I/O settings after the O_DIRECT probe of the VM directory. */
  readonly diskIo: DiskIo
  readonly diskCache: DiskCache
  /** Undefined for legacy BIOS boot. */
  readonly firmware: FirmwareFiles | undefined
  /** True when this libvirt accepts `<backend type='passt'/>` on user interfaces. */
  readonly passt: boolean
  /**
   * True when this libvirt accepts `<readonly/>` on a virtiofs share. libvirt 9.0 rejects it
   * ("virtiofs does not yet support read-only mode").
   */
  readonly virtiofsReadonly: boolean
  readonly hostCpu: HostCpu
  /** Logical sector size of each `DEVICE` block device, when it is not 512 bytes. */
  readonly blockSectorSizes: ReadonlyMap<string, number>
  /** File that receives the guest's serial console output. */
  readonly serialLog: string
  /** virtiofsd binary, for virtiofs shares. */
  readonly virtiofsd: string | undefined
  /**
   * How virtiofsd isolates itself: its own namespaces (the default), or chroot inside a
   * container, where Docker's default seccomp profile forbids the namespaces and pivot_root.
   */
  readonly virtiofsSandbox: "namespace" | "chroot"
  /** /dev/dri render node, when `GPU=intel` and the host has one. */
  readonly renderNode: string | undefined
}
