/**
 * A typed model of the libvirt domain XML that vm-runner writes. Each type is named after its
 * element path (`DomainDiskDriver` is `<domain><devices><disk><driver>`), and each field after
 * its attribute or child element, so the model reads like libvirt's formatdomain documentation.
 * It covers only what vm-runner sets. `DomainXml.ts` serializes it.
 */
import type { Arch, MachineType } from "../domain/Config.ts"

export type OnOff = "on" | "off"
export type YesNo = "yes" | "no"

export interface Domain {
  readonly type: "kvm" | "qemu"
  readonly name: string
  readonly uuid: string
  readonly memory: DomainMemory
  readonly currentMemory: DomainMemory
  readonly memoryBacking?: DomainMemoryBacking | undefined
  readonly vcpu: DomainVcpu
  readonly iothreads?: number | undefined
  readonly os: DomainOs
  readonly features: DomainFeatures
  readonly cpu: DomainCpu
  readonly clock: DomainClock
  readonly onPoweroff: DomainLifecycleAction
  readonly onReboot: DomainLifecycleAction
  readonly onCrash: DomainLifecycleAction
  readonly pm?: DomainPm | undefined
  readonly devices: DomainDevices
  /** Extra QEMU arguments, the only part that needs the `qemu:` XML namespace. */
  readonly qemuCommandline?: DomainQemuCommandline | undefined
}

export interface DomainMemory {
  readonly unit: "MiB"
  readonly value: number
}

export interface DomainMemoryBacking {
  readonly source: { readonly type: "memfd" }
  readonly access: { readonly mode: "shared" }
}

export interface DomainVcpu {
  readonly placement: "static"
  readonly value: number
}

export type DomainLifecycleAction = "destroy" | "restart"

// ---------------------------------------------------------------------------------------------
// <os>

export interface DomainOs {
  readonly type: DomainOsType
  readonly loader?: DomainLoader | undefined
  readonly nvram?: DomainNvram | undefined
}

export interface DomainOsType {
  readonly arch: Arch
  readonly machine: MachineType
  readonly value: "hvm"
}

export interface DomainLoader {
  readonly readonly: YesNo
  readonly secure: YesNo
  readonly type: "pflash"
  readonly path: string
}

export interface DomainNvram {
  /** Read-only variable store that libvirt copies to `path` when `path` does not exist. */
  readonly template: string
  readonly path: string
}

// ---------------------------------------------------------------------------------------------
// <features>, <cpu>, <clock>, <pm>

export interface DomainFeatures {
  readonly acpi: boolean
  readonly apic: boolean
  readonly hyperv?: DomainFeatureHyperV | undefined
  readonly gic?: DomainFeatureGic | undefined
  readonly smm?: DomainFeatureState | undefined
}

export interface DomainFeatureState {
  readonly state: OnOff
}

export interface DomainFeatureGic {
  readonly version: "2" | "3" | "host"
}

/** The Hyper-V enlightenments, in libvirt's names (QEMU's `hv-*` CPU properties). */
export interface DomainFeatureHyperV {
  readonly mode: "custom"
  readonly relaxed?: DomainFeatureState | undefined
  readonly vapic?: DomainFeatureState | undefined
  readonly spinlocks?: DomainFeatureHyperVSpinlocks | undefined
  readonly vpindex?: DomainFeatureState | undefined
  readonly runtime?: DomainFeatureState | undefined
  readonly synic?: DomainFeatureState | undefined
  readonly stimer?: DomainFeatureState | undefined
  readonly reset?: DomainFeatureState | undefined
  readonly frequencies?: DomainFeatureState | undefined
  readonly tlbflush?: DomainFeatureState | undefined
  readonly ipi?: DomainFeatureState | undefined
  readonly evmcs?: DomainFeatureState | undefined
  readonly avic?: DomainFeatureState | undefined
}

export interface DomainFeatureHyperVSpinlocks {
  readonly state: OnOff
  readonly retries: number
}

export type DomainCpu =
  | { readonly mode: "host-passthrough" | "host-model" | "maximum" }
  | {
      readonly mode: "custom"
      readonly match: "exact"
      readonly model: DomainCpuModel
    }

export interface DomainCpuModel {
  readonly fallback: "allow" | "forbid"
  readonly value: string
}

export interface DomainClock {
  readonly offset: "utc" | "localtime"
  readonly timers: ReadonlyArray<DomainTimer>
}

export interface DomainTimer {
  readonly name: "rtc" | "pit" | "hpet" | "hypervclock"
  readonly present?: YesNo | undefined
  readonly tickpolicy?: "catchup" | "delay" | undefined
}

export interface DomainPm {
  readonly suspendToMem: { readonly enabled: YesNo }
  readonly suspendToDisk: { readonly enabled: YesNo }
}

// ---------------------------------------------------------------------------------------------
// <devices>

export interface DomainDevices {
  readonly disks: ReadonlyArray<DomainDisk>
  readonly controllers: ReadonlyArray<DomainController>
  readonly filesystems: ReadonlyArray<DomainFilesystem>
  readonly interfaces: ReadonlyArray<DomainInterface>
  readonly serials: ReadonlyArray<DomainSerial>
  readonly consoles: ReadonlyArray<DomainConsole>
  readonly channels: ReadonlyArray<DomainChannel>
  readonly inputs: ReadonlyArray<DomainInput>
  readonly tpms: ReadonlyArray<DomainTpm>
  readonly graphics: ReadonlyArray<DomainGraphics>
  readonly videos: ReadonlyArray<DomainVideo>
  readonly memballoon: DomainMemBalloon
  readonly rngs: ReadonlyArray<DomainRng>
}

export interface DomainDeviceBoot {
  readonly order: number
}

/** `<address type='drive'>`: a slot on an IDE, SATA or SCSI controller. */
export interface DomainAddressDrive {
  readonly type: "drive"
  readonly controller: number
  readonly bus: number
  readonly target: number
  readonly unit: number
}

export type DomainDiskBus = "virtio" | "scsi" | "sata" | "ide" | "usb"

export interface DomainDisk {
  readonly type: "file" | "block"
  readonly device: "disk" | "cdrom"
  readonly driver: DomainDiskDriver
  readonly source: DomainDiskSource
  readonly target: DomainDiskTarget
  readonly blockio?: DomainDiskBlockIo | undefined
  readonly boot?: DomainDeviceBoot | undefined
  readonly readonly: boolean
  readonly address?: DomainAddressDrive | undefined
}

export interface DomainDiskDriver {
  readonly name: "qemu"
  readonly type: "qcow2" | "raw"
  readonly cache?: "none" | "writeback" | "writethrough" | "directsync" | "unsafe" | undefined
  readonly io?: "native" | "threads" | "io_uring" | undefined
  readonly discard?: "unmap" | undefined
  readonly iothread?: number | undefined
}

/** `file` for `<disk type='file'>`, `dev` for `<disk type='block'>`. */
export type DomainDiskSource = { readonly file: string } | { readonly dev: string }

export interface DomainDiskTarget {
  readonly dev: string
  readonly bus: DomainDiskBus
}

export interface DomainDiskBlockIo {
  readonly logicalBlockSize: number
  readonly physicalBlockSize: number
}

export interface DomainController {
  readonly type: "scsi" | "usb"
  readonly index: number
  readonly model: "virtio-scsi" | "qemu-xhci" | "none"
  readonly driver?: { readonly iothread: number } | undefined
}

export interface DomainFilesystem {
  readonly type: "mount"
  readonly accessmode: "passthrough" | "mapped" | "squash"
  readonly driver: { readonly type: "virtiofs" | "path" }
  readonly binary?: { readonly path: string; readonly sandbox?: "chroot" | undefined } | undefined
  readonly source: { readonly dir: string }
  readonly target: { readonly dir: string }
  readonly readonly: boolean
}

export interface DomainInterface {
  readonly type: "user" | "bridge" | "direct"
  readonly mac: { readonly address: string }
  readonly source?: DomainInterfaceSource | undefined
  readonly model: { readonly type: string }
  readonly backend?: { readonly type: "passt" } | undefined
  readonly mtu?: { readonly size: number } | undefined
  readonly rom?: { readonly file: string } | undefined
  readonly boot?: DomainDeviceBoot | undefined
  readonly portForwards: ReadonlyArray<DomainInterfacePortForward>
}

/** `bridge` for `type='bridge'`, or `dev` and `mode` for `type='direct'` (macvtap). */
export type DomainInterfaceSource =
  | { readonly bridge: string }
  | { readonly dev: string; readonly mode: "bridge" }

export interface DomainInterfacePortForward {
  readonly proto: "tcp" | "udp"
  readonly ranges: ReadonlyArray<{ readonly start: number; readonly to: number }>
}

export interface DomainSerial {
  readonly type: "pty"
  readonly log?: { readonly file: string; readonly append: OnOff } | undefined
  readonly target: { readonly port: number }
}

export interface DomainConsole {
  readonly type: "pty"
  readonly target: { readonly type: "serial"; readonly port: number }
}

export interface DomainChannel {
  readonly type: "unix"
  /** Without a path, libvirt picks the socket path itself. */
  readonly source: { readonly mode: "bind" }
  readonly target: { readonly type: "virtio"; readonly name: string }
}

export interface DomainInput {
  readonly type: "tablet" | "keyboard"
  readonly bus: "usb"
}

export interface DomainTpm {
  readonly model: "tpm-crb" | "tpm-tis"
  readonly backend: DomainTpmBackend
}

export interface DomainTpmBackend {
  readonly type: "emulator"
  readonly version: "2.0"
  readonly persistentState?: YesNo | undefined
}

export type DomainGraphics = DomainGraphicsVnc | DomainGraphicsEglHeadless

export interface DomainGraphicsVnc {
  readonly type: "vnc"
  readonly port: number
  readonly autoport: YesNo
  readonly passwd?: string | undefined
  readonly keymap?: string | undefined
  readonly listen: { readonly type: "address"; readonly address: string }
}

export interface DomainGraphicsEglHeadless {
  readonly type: "egl-headless"
  readonly gl: { readonly rendernode: string }
}

export interface DomainVideo {
  readonly model: DomainVideoModel
}

export interface DomainVideoModel {
  readonly type: "virtio" | "none"
  readonly heads?: number | undefined
  readonly primary?: YesNo | undefined
  readonly acceleration?: { readonly accel3d: YesNo } | undefined
}

export interface DomainMemBalloon {
  readonly model: "virtio" | "none"
}

export interface DomainRng {
  readonly model: "virtio"
  readonly backend: { readonly model: "random"; readonly path: string }
}

export interface DomainQemuCommandline {
  readonly args: ReadonlyArray<string>
}
