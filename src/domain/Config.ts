import type { ByteSize } from "./ByteSize.ts"
import type { MacAddress } from "./MacAddress.ts"
import type { VmName } from "./VmName.ts"

export type Arch = "x86_64" | "aarch64"
export const arches: ReadonlyArray<Arch> = ["x86_64", "aarch64"]

export type BootMode = "uefi" | "legacy" | "secure"
export type MachineType = "q35" | "pc" | "virt"
export type BootDevice = "hd" | "cdrom" | "network"
export type DiskBus = "virtio" | "scsi" | "nvme" | "sata" | "ide" | "usb"
export type DiskIo = "native" | "threads" | "io_uring"
export type DiskCache = "none" | "writeback" | "writethrough" | "directsync" | "unsafe"
export type NetworkMode = "nat" | "bridge" | "direct"
export type NicModel = "virtio" | "e1000" | "e1000e" | "rtl8139" | "ne2k_pci" | "pcnet" | "vmxnet3"
export type FilesystemDriver = "virtiofs" | "9p"
export type FilesystemAccessMode = "passthrough" | "mapped" | "squash"
export type GraphicsMode = "none" | "vnc" | "novnc"
export type GpuMode = "off" | "intel"

/** How a checksum for a catalogue image is known. */
export type ImageChecksum =
  | { readonly _tag: "Digest"; readonly algorithm: "sha256" | "sha512"; readonly hex: string }
  | { readonly _tag: "SumsFile"; readonly url: string }

/** One entry of `distros.yaml`. */
export interface Distro {
  readonly key: string
  readonly name: string
  readonly url: string
  readonly arch: Arch
  readonly user: string
  readonly checksum: ImageChecksum | undefined
}

/**
 * What `BOOT_FROM` names, before anything is fetched. The kind is a hint from the file name;
 * the image layer checks the content once the file is local.
 */
export type BootFrom =
  | { readonly _tag: "Catalogue" }
  | { readonly _tag: "Blank" }
  | { readonly _tag: "Url"; readonly url: string; readonly hint: SourceHint }
  | { readonly _tag: "Path"; readonly path: string; readonly hint: SourceHint }

export type SourceHint = "iso" | "disk" | "archive" | "unknown"

export interface ExtraDisk {
  readonly index: number
  readonly size: ByteSize
}

export interface BlockDevice {
  readonly index: number
  readonly path: string
}

export interface Storage {
  readonly diskSize: ByteSize
  readonly bus: DiskBus
  readonly io: DiskIo
  readonly cache: DiskCache
  readonly ioThread: boolean
  readonly preallocate: boolean
  readonly extraDisks: ReadonlyArray<ExtraDisk>
  readonly blockDevices: ReadonlyArray<BlockDevice>
}

export interface PortForward {
  readonly protocol: "tcp" | "udp"
  readonly host: number
  readonly guest: number
}

export interface Nic {
  readonly index: number
  readonly mode: NetworkMode
  readonly bridge: string | undefined
  readonly directDevice: string | undefined
  readonly mac: MacAddress
  readonly model: NicModel
  readonly mtu: number | undefined
  readonly boot: boolean
}

export interface Network {
  readonly nics: ReadonlyArray<Nic>
  readonly sshPort: number
  readonly portForwards: ReadonlyArray<PortForward>
  readonly ipxe: { readonly enabled: boolean; readonly romPath: string | undefined }
}

export interface FilesystemShare {
  readonly index: number
  readonly source: string
  readonly tag: string
  readonly driver: FilesystemDriver
  readonly accessMode: FilesystemAccessMode
  readonly readonly: boolean
}

export interface Boot {
  readonly from: BootFrom
  readonly mode: BootMode
  readonly tpm: boolean
  readonly machine: MachineType
  readonly order: ReadonlyArray<BootDevice>
  /** True when `BOOT_FROM` names an ISO by its file name, so ISO defaults apply. */
  readonly isoDefaults: boolean
  readonly blankDisk: boolean
  readonly forceIso: boolean
}

export interface CloudInit {
  readonly enabled: boolean
  readonly userDataPath: string | undefined
  readonly user: string
  readonly password: string
  /** True when `GUEST_PASSWORD` is unset and the published default password is in use. */
  readonly passwordIsDefault: boolean
  readonly sshPublicKey: string | undefined
}

export interface Graphics {
  readonly mode: GraphicsMode
  readonly vncPort: number
  readonly novncPort: number
  readonly keymap: string | undefined
  readonly vncPassword: string | undefined
  readonly tlsCertPath: string | undefined
  readonly tlsKeyPath: string | undefined
}

export interface Redfish {
  readonly enabled: boolean
  readonly port: number
  readonly username: string
  readonly password: string
  readonly passwordIsDefault: boolean
  readonly systemId: string
  readonly storagePool: string
  readonly storagePath: string
}

export interface Devices {
  readonly cpuModel: string
  readonly hyperv: boolean
  readonly gpu: GpuMode
  readonly usb: boolean
  readonly balloon: boolean
  readonly rng: boolean
  readonly extraArgs: ReadonlyArray<string>
}

/** Where the program keeps its files; see `Layout.ts` for the names inside. */
export interface DataPaths {
  /** The `DATA_DIR` volume, or undefined when the built-in location is used. */
  readonly volume: string | undefined
  readonly root: string
}

export interface Runtime {
  readonly persist: boolean
  readonly noConsole: boolean
  readonly requireKvm: boolean
  readonly libvirtUri: string
  readonly logVerbose: boolean
  readonly downloadRetries: number
  /** Seconds the guest gets to power off after SIGTERM before it is stopped hard. */
  readonly shutdownTimeout: number
}

/** The whole resolved configuration of one VM, after every variable is read and checked. */
export interface VmConfig {
  readonly name: VmName
  readonly distro: Distro
  readonly arch: Arch
  readonly memoryMiB: number
  readonly cpus: number
  readonly storage: Storage
  readonly boot: Boot
  readonly cloudInit: CloudInit
  readonly network: Network
  readonly filesystems: ReadonlyArray<FilesystemShare>
  readonly graphics: Graphics
  readonly redfish: Redfish
  readonly devices: Devices
  readonly data: DataPaths
  readonly runtime: Runtime
}
