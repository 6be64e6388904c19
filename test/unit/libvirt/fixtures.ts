/**
 * Builders of complete test inputs. Each starts from one ordinary VM (Ubuntu cloud image,
 * q35, UEFI, KVM on an AMD host, one NAT NIC without passt) and applies overrides section by
 * section, so a test states only what it is about.
 */

import type { ByteSize } from "../../../src/domain/ByteSize.ts"
import { GiB } from "../../../src/domain/ByteSize.ts"
import type {
  FilesystemShare,
  Network,
  Nic,
  PortForward,
  VmConfig
} from "../../../src/domain/Config.ts"
import type { MacAddress } from "../../../src/domain/MacAddress.ts"
import type { VmName } from "../../../src/domain/VmName.ts"
import type { DomainInputs, FirmwareFiles } from "../../../src/libvirt/DomainInputs.ts"

export const vmDir = "/var/lib/vm-runner/vms/testvm"

/** Each config section may be replaced in part; arrays and scalars are replaced whole. */
export type ConfigOverrides = {
  readonly [K in keyof VmConfig]?: VmConfig[K] extends object
    ? VmConfig[K] extends ReadonlyArray<unknown>
      ? VmConfig[K]
      : Partial<VmConfig[K]>
    : VmConfig[K]
}

export type InputsOverrides = Partial<Omit<DomainInputs, "config">> & {
  readonly config?: ConfigOverrides
}

export const makeNic = (overrides: Partial<Nic> = {}): Nic => {
  const index = overrides.index ?? 1
  return {
    index,
    mode: "nat",
    bridge: undefined,
    directDevice: undefined,
    mac: `52:54:00:00:00:${index.toString(16).padStart(2, "0")}` as MacAddress,
    model: "virtio",
    mtu: undefined,
    boot: false,
    ...overrides
  }
}

export const makeNetwork = (
  nics: ReadonlyArray<Nic>,
  overrides: Partial<Omit<Network, "nics">> = {}
): Network => ({
  nics,
  sshPort: 2222,
  portForwards: [],
  ipxe: { enabled: false, romPath: undefined },
  ...overrides
})

export const makeShare = (overrides: Partial<FilesystemShare> = {}): FilesystemShare => ({
  index: 1,
  source: "/srv/share",
  tag: "share",
  driver: "virtiofs",
  accessMode: "passthrough",
  readonly: false,
  ...overrides
})

export const forward = (host: number, guest: number, protocol: PortForward["protocol"] = "tcp") =>
  ({ protocol, host, guest }) satisfies PortForward

export const baseConfig: VmConfig = {
  name: "testvm" as VmName,
  distro: {
    key: "ubuntu-2404",
    name: "Ubuntu 24.04",
    url: "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
    arch: "x86_64",
    user: "ubuntu",
    checksum: undefined
  },
  arch: "x86_64",
  memoryMiB: 4096,
  cpus: 2,
  storage: {
    diskSize: (20 * GiB) as ByteSize,
    bus: "virtio",
    io: "native",
    cache: "none",
    ioThread: true,
    preallocate: false,
    extraDisks: [],
    blockDevices: []
  },
  boot: {
    from: { _tag: "Catalogue" },
    mode: "uefi",
    tpm: false,
    machine: "q35",
    order: ["hd"],
    isoDefaults: false,
    blankDisk: false,
    forceIso: false
  },
  cloudInit: {
    enabled: true,
    userDataPath: undefined,
    user: "ubuntu",
    password: "password",
    passwordIsDefault: true,
    sshPublicKey: undefined
  },
  network: {
    nics: [makeNic()],
    sshPort: 2222,
    portForwards: [],
    ipxe: { enabled: false, romPath: undefined }
  },
  filesystems: [],
  graphics: {
    mode: "none",
    vncPort: 5900,
    novncPort: 6080,
    keymap: undefined,
    vncPassword: undefined,
    tlsCertPath: undefined,
    tlsKeyPath: undefined
  },
  redfish: {
    enabled: false,
    port: 8443,
    username: "admin",
    password: "password",
    passwordIsDefault: true,
    systemId: "testvm",
    storagePool: "default",
    storagePath: "/var/lib/vm-runner/redfish"
  },
  devices: {
    cpuModel: "host",
    hyperv: false,
    gpu: "off",
    usb: true,
    balloon: true,
    rng: true,
    extraArgs: []
  },
  data: { volume: undefined, root: "/var/lib/vm-runner" },
  runtime: {
    persist: false,
    noConsole: false,
    requireKvm: false,
    libvirtUri: "qemu:///system",
    logVerbose: false,
    downloadRetries: 3,
    shutdownTimeout: 60
  }
}

export const makeConfig = (overrides: ConfigOverrides = {}): VmConfig => {
  const merged: Record<string, unknown> = { ...baseConfig }
  for (const [key, value] of Object.entries(overrides)) {
    const base = (baseConfig as unknown as Record<string, unknown>)[key]
    const mergeable = typeof value === "object" && value !== null && !Array.isArray(value)
    merged[key] = mergeable ? { ...(base as object), ...value } : value
  }
  return merged as unknown as VmConfig
}

export const ovmf: FirmwareFiles = {
  loader: "/usr/share/OVMF/OVMF_CODE_4M.fd",
  varsTemplate: "/usr/share/OVMF/OVMF_VARS_4M.fd",
  nvram: `${vmDir}/nvram.fd`,
  secureBoot: false
}

export const ovmfSecureBoot: FirmwareFiles = {
  loader: "/usr/share/OVMF/OVMF_CODE_4M.ms.fd",
  varsTemplate: "/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
  nvram: `${vmDir}/nvram.fd`,
  secureBoot: true
}

export const aavmf: FirmwareFiles = {
  loader: "/usr/share/AAVMF/AAVMF_CODE.fd",
  varsTemplate: "/usr/share/AAVMF/AAVMF_VARS.fd",
  nvram: `${vmDir}/nvram.fd`,
  secureBoot: false
}

export const amdHost = { vendor: "amd", flags: new Set(["svm", "avic", "npt"]) } as const
export const intelHost = { vendor: "intel", flags: new Set(["vmx", "ept", "apicv"]) } as const

export const baseInputs: DomainInputs = {
  config: baseConfig,
  uuid: "6b1c6d4e-2f0a-4c1e-9b7a-3d5e8f9a0b1c",
  accel: "kvm",
  virtiofsSandbox: "namespace",
  workDisk: { path: `${vmDir}/disk.qcow2`, format: "qcow2" },
  extraDisks: [],
  seedIso: `${vmDir}/seed.iso`,
  installIso: undefined,
  diskIo: "native",
  diskCache: "none",
  firmware: ovmf,
  passt: false,
  virtiofsReadonly: false,
  hostCpu: amdHost,
  blockSectorSizes: new Map(),
  serialLog: `${vmDir}/serial.log`,
  virtiofsd: "/usr/lib/qemu/virtiofsd",
  renderNode: undefined
}

/** Builds test inputs: the base VM with `overrides` applied, config sections merged shallowly. */
export const makeInputs = (overrides: InputsOverrides = {}): DomainInputs => {
  const { config, ...rest } = overrides
  return { ...baseInputs, ...rest, config: makeConfig(config) }
}

/** A directory name with a space, an ampersand, both quotes and non-ASCII letters. */
const awkwardDir = `/data/Tom & Jerry's "VMs"/Ünïcødé 虚拟机`
const installIso = "/images/debian-12.5.0-amd64-netinst.iso"
const efiVirtioRom = "/usr/lib/ipxe/qemu/efi-virtio.rom"
const legacyPc = { mode: "legacy", machine: "pc" } as const
const aarch64Config = {
  arch: "aarch64",
  boot: { machine: "virt" },
  distro: { ...baseConfig.distro, key: "debian-12-arm64", arch: "aarch64" }
} as const satisfies ConfigOverrides
const extraDiskInputs = {
  extraDisks: [
    { index: 2, path: `${vmDir}/disk2.qcow2` },
    { index: 4, path: `${vmDir}/disk4.qcow2` }
  ],
  blockSectorSizes: new Map([["/dev/sdc", 4096]])
}
const extraDiskStorage = {
  extraDisks: [
    { index: 2, size: (50 * GiB) as ByteSize },
    { index: 4, size: (10 * GiB) as ByteSize }
  ],
  blockDevices: [
    { index: 1, path: "/dev/sdb" },
    { index: 3, path: "/dev/sdc" }
  ]
}

/**
 * Representative configurations, covering every DISK_TYPE, BOOT_MODE, machine type, NIC mode
 * and share driver, passt on and off, graphics, Hyper-V on both vendors and devices turned
 * off. The golden files and the schema validation both use this table.
 */
export const configurationTable: ReadonlyArray<readonly [name: string, InputsOverrides]> = [
  ["uefi-q35-user-networking", {}],
  [
    "user-networking-forwards",
    {
      config: {
        network: makeNetwork([makeNic({ mtu: 1400 })], {
          sshPort: 2200,
          portForwards: [forward(8080, 80), forward(5353, 53, "udp")]
        })
      }
    }
  ],
  [
    "disk-virtio-extra-and-block",
    { ...extraDiskInputs, config: { storage: { bus: "virtio", ...extraDiskStorage } } }
  ],
  ["disk-scsi", { ...extraDiskInputs, config: { storage: { bus: "scsi", ...extraDiskStorage } } }],
  [
    "disk-nvme",
    {
      ...extraDiskInputs,
      diskIo: "io_uring",
      config: { storage: { bus: "nvme", io: "io_uring", ...extraDiskStorage } }
    }
  ],
  ["disk-sata", { installIso, config: { storage: { bus: "sata" } } }],
  ["disk-usb", { config: { storage: { bus: "usb" } } }],
  [
    "legacy-pc-ide",
    {
      firmware: undefined,
      installIso,
      config: { storage: { bus: "ide" }, boot: { ...legacyPc, order: ["cdrom", "hd"] } }
    }
  ],
  ["legacy-q35", { firmware: undefined, config: { boot: { mode: "legacy" } } }],
  ["uefi-pc", { config: { boot: { machine: "pc" } } }],
  [
    "secure-tpm-hyperv-intel",
    {
      firmware: ovmfSecureBoot,
      hostCpu: intelHost,
      config: { boot: { mode: "secure", tpm: true }, devices: { hyperv: true } }
    }
  ],
  [
    "secure-tpm-persistent-tcg",
    {
      accel: "tcg",
      firmware: ovmfSecureBoot,
      config: { boot: { mode: "secure", tpm: true }, runtime: { persist: true } }
    }
  ],
  [
    "aarch64-tcg-vnc",
    {
      accel: "tcg",
      firmware: aavmf,
      config: { ...aarch64Config, graphics: { mode: "vnc" }, boot: { machine: "virt", tpm: true } }
    }
  ],
  ["aarch64-kvm", { firmware: aavmf, config: { ...aarch64Config, storage: { bus: "scsi" } } }],
  [
    "nic-bridge",
    {
      config: {
        network: makeNetwork([
          makeNic({ mode: "bridge", bridge: "br0", model: "e1000e", mtu: 9000 })
        ])
      }
    }
  ],
  [
    "nic-direct",
    { config: { network: makeNetwork([makeNic({ mode: "direct", directDevice: "eth0" })]) } }
  ],
  [
    "nat-passt",
    {
      passt: true,
      config: {
        network: makeNetwork([makeNic({ mtu: 1400 })], {
          portForwards: [forward(8080, 80), forward(5353, 53, "udp")]
        })
      }
    }
  ],
  [
    "multi-nic-user-networking",
    {
      config: {
        network: makeNetwork(
          [
            makeNic({ index: 1, mode: "bridge", bridge: "br0" }),
            makeNic({ index: 2, mode: "nat", model: "e1000" }),
            makeNic({ index: 3, mode: "nat" })
          ],
          { portForwards: [forward(8080, 80)] }
        )
      }
    }
  ],
  [
    "multi-nic-passt-shares",
    {
      passt: true,
      virtiofsReadonly: true,
      config: {
        network: makeNetwork(
          [
            makeNic({ index: 1, mode: "bridge", bridge: "br0" }),
            makeNic({ index: 2, mode: "nat" }),
            makeNic({ index: 3, mode: "direct", directDevice: "eth1", model: "rtl8139" })
          ],
          { portForwards: [forward(5353, 53, "udp")] }
        ),
        filesystems: [
          makeShare({ source: "/srv/data", tag: "data", readonly: true }),
          makeShare({
            index: 2,
            source: "/srv/logs",
            tag: "logs",
            driver: "9p",
            accessMode: "mapped"
          })
        ]
      }
    }
  ],
  [
    "ipxe-network-boot",
    {
      seedIso: undefined,
      config: {
        boot: { order: ["network", "hd"] },
        network: makeNetwork(
          [
            makeNic({ index: 1, boot: true }),
            makeNic({ index: 2, boot: true, model: "e1000", mode: "bridge", bridge: "br0" })
          ],
          { ipxe: { enabled: true, romPath: efiVirtioRom } }
        )
      }
    }
  ],
  ["shares-virtiofs", { config: { filesystems: [makeShare({ readonly: true })] } }],
  [
    "shares-9p",
    {
      config: {
        filesystems: [
          makeShare({ driver: "9p", accessMode: "mapped", tag: "a", source: "/srv/a" }),
          makeShare({
            index: 2,
            driver: "9p",
            accessMode: "squash",
            tag: "b",
            source: "/srv/b",
            readonly: true
          })
        ]
      }
    }
  ],
  [
    "graphics-vnc",
    { config: { graphics: { mode: "vnc", vncPort: 5901, vncPassword: "s3cret", keymap: "de" } } }
  ],
  ["graphics-novnc", { config: { graphics: { mode: "novnc" } } }],
  [
    "gpu-intel",
    {
      renderNode: "/dev/dri/renderD128",
      config: { graphics: { mode: "vnc" }, devices: { gpu: "intel" } }
    }
  ],
  ["hyperv-amd", { hostCpu: amdHost, config: { devices: { hyperv: true } } }],
  ["hyperv-intel", { hostCpu: intelHost, config: { devices: { hyperv: true } } }],
  [
    "hyperv-pc-legacy",
    { firmware: undefined, config: { boot: legacyPc, devices: { hyperv: true } } }
  ],
  ["devices-off", { config: { devices: { usb: false, balloon: false, rng: false } } }],
  [
    "extra-args",
    {
      config: {
        devices: {
          extraArgs: ["-device", '{"driver":"virtio-keyboard-pci"}', "-smbios", "type=1,serial=x"]
        }
      }
    }
  ],
  [
    "installer-blank-disk",
    {
      seedIso: undefined,
      installIso,
      config: {
        boot: { from: { _tag: "Blank" }, blankDisk: true, order: ["cdrom", "hd"] },
        cloudInit: { enabled: false }
      }
    }
  ],
  ["tcg-named-cpu", { accel: "tcg", config: { devices: { cpuModel: "Skylake-Client" } } }],
  [
    "raw-disk-page-cache",
    {
      workDisk: { path: `${vmDir}/disk.raw`, format: "raw" },
      diskIo: "threads",
      diskCache: "writeback",
      config: { storage: { ioThread: false } }
    }
  ],
  [
    "awkward-paths",
    {
      workDisk: { path: `${awkwardDir}/disk.qcow2`, format: "qcow2" },
      seedIso: "/data/<seed> & more/seed.iso",
      serialLog: "/data/logs/serial 'one'.log",
      config: { filesystems: [makeShare({ source: "/srv/share with spaces & more" })] }
    }
  ]
]
