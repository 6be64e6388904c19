import type { NicModel } from "../../domain/Config.ts"
import type { DomainInputs } from "../DomainInputs.ts"
import type { DomainQemuCommandline } from "../DomainModel.ts"
import type { StorageDisk } from "./Disks.ts"
import type { UserNetworkNic } from "./Interfaces.ts"

/** The QEMU device of each NIC model, keyed by libvirt's model name. */
export const qemuNicDevices: Readonly<Record<NicModel, string>> = {
  virtio: "virtio-net-pci",
  e1000: "e1000",
  e1000e: "e1000e",
  rtl8139: "rtl8139",
  ne2k_pci: "ne2k_pci",
  pcnet: "pcnet",
  vmxnet3: "vmxnet3"
}

/** QEMU separates options with commas, so a comma inside a value is written twice. */
export const escapeQemuOptionValue = (value: string): string => value.replaceAll(",", ",,")

/** Joins `name=value` options for `-netdev` and `-drive`, skipping undefined values. */
const joinOptions = (options: Record<string, string | number | undefined>): string =>
  Object.entries(options)
    .filter((option): option is [string, string | number] => option[1] !== undefined)
    .map(([name, value]) => `${name}=${value}`)
    .join(",")

/**
 * Writes a `-device` value in QEMU's JSON form.
 *
 * NOTE: QEMU 7.2 creates every `-device` given as `name=value` options before any given as
 * JSON. libvirt writes its own devices as JSON with fixed PCI addresses, so an option-form PCI
 * device takes a slot that libvirt assigned, and QEMU fails to start. A JSON device is created
 * after libvirt's devices, in a free slot.
 */
const jsonDevice = (properties: Record<string, string | number | undefined>): string =>
  JSON.stringify(properties)

/**
 * Picks the networks of a slirp NIC. The first NIC keeps QEMU's defaults, 10.0.2.0/24 and
 * fec0::/64, where the host is 10.0.2.2 and fec0::2. NIC n gets 10.0.(n+1).0/24 and
 * fec0:(n-1)::/64 with n-1 in hex. Two NICs in one subnet would let the guest send the replies
 * of a forwarded connection out through the NIC whose slirp instance never saw it.
 */
export const userNetworkSubnets = (index: number): Array<string> =>
  index === 1
    ? []
    : [`net=10.0.${index + 1}.0/24`, `ipv6-net=fec0:${(index - 1).toString(16)}::/64`]

/**
 * Builds the `-netdev user` and `-device` arguments of one slirp NIC. `restrict=off` lets the guest
 * reach the host and the outside world. Each forward listens on every host address, so the
 * port a container publishes reaches it. IDs start with `vmr-` to stay clear of libvirt's own.
 */
export const userNetworkArgs = (nic: UserNetworkNic): Array<string> => {
  const netdevId = `vmr-net${nic.index}`
  const forwards = nic.forwards.map(
    (forward) => `hostfwd=${forward.protocol}::${forward.host}-:${forward.guest}`
  )
  const netdev = [
    `user,id=${netdevId},restrict=off`,
    ...userNetworkSubnets(nic.index),
    ...forwards
  ].join(",")
  const model = qemuNicDevices[nic.model]
  const device = jsonDevice({
    driver: model,
    netdev: netdevId,
    id: `vmr-nic${nic.index}`,
    mac: nic.mac,
    bootindex: nic.bootOrder,
    romfile: nic.rom,
    // Of QEMU's NICs only virtio-net can tell the guest an MTU.
    host_mtu: model === "virtio-net-pci" ? nic.mtu : undefined
  })
  return ["-netdev", netdev, "-device", device]
}

/**
 * Builds the `-drive` and `-device nvme` arguments of one NVMe disk. QEMU requires a serial
 * number for NVMe controllers, so each gets the disk's name (`disk`, `disk2`, `device`).
 *
 * NOTE: libvirt does not manage these disks, so it neither labels nor chowns them. The QEMU
 * process must be able to open them with its own user (root in the container image).
 */
export const nvmeDiskArgs = (disk: StorageDisk): Array<string> => {
  const driveId = `vmr-drive-${disk.name}`
  const drive = joinOptions({
    file: escapeQemuOptionValue(disk.path),
    if: "none",
    id: driveId,
    format: disk.format,
    cache: disk.cache,
    aio: disk.io,
    discard: disk.kind === "file" ? "unmap" : undefined
  })
  const device = jsonDevice({
    driver: "nvme",
    drive: driveId,
    id: `vmr-nvme-${disk.name}`,
    serial: disk.name,
    bootindex: disk.bootOrder,
    logical_block_size: disk.blockSize,
    physical_block_size: disk.blockSize
  })
  return ["-drive", drive, "-device", device]
}

/**
 * Builds `<qemu:commandline>`: the slirp NICs, the NVMe disks, then `EXTRA_ARGS` last so
 * they can refer to anything added before them. Undefined when there is nothing to add, so
 * the `qemu:` namespace is declared only when used.
 *
 * NOTE: `EXTRA_ARGS` are passed as given. A PCI device there in option form
 * (`-device virtio-keyboard-pci`) hits the slot clash described at `jsonDevice`, while the
 * JSON form (`-device {"driver":"virtio-keyboard-pci"}`) works.
 */
export const buildQemuCommandline = (
  inputs: DomainInputs,
  userNetworkNics: ReadonlyArray<UserNetworkNic>,
  nvmeDisks: ReadonlyArray<StorageDisk>
): DomainQemuCommandline | undefined => {
  const args = [
    ...userNetworkNics.flatMap(userNetworkArgs),
    ...nvmeDisks.flatMap(nvmeDiskArgs),
    ...inputs.config.devices.extraArgs
  ]
  return args.length === 0 ? undefined : { args }
}
