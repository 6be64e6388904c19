import type {
  DomainAddressDrive,
  DomainDisk,
  DomainDiskBus,
  DomainDiskTarget
} from "../DomainModel.ts"

/** A disk or CD-ROM before it has a target name and a controller slot. */
export interface PendingDisk extends Omit<DomainDisk, "target" | "address"> {
  readonly bus: DomainDiskBus
}

/** libvirt's naming convention: the prefix names the bus family, the letters the position. */
const prefixes: Readonly<Record<DomainDiskBus, string>> = {
  virtio: "vd",
  scsi: "sd",
  sata: "sd",
  usb: "sd",
  ide: "hd"
}

/** Ports of one AHCI controller (q35's built-in ICH9 AHCI has 6). */
const sataPortsPerController = 6

/** 0 → a, 25 → z, 26 → aa, 27 → ab: the letters libvirt parses back to a disk index. */
export const diskLetters = (position: number): string => {
  let rest = position
  let letters = ""
  do {
    letters = String.fromCharCode(97 + (rest % 26)) + letters
    rest = Math.floor(rest / 26) - 1
  } while (rest >= 0)
  return letters
}

/**
 * The controller slot of the `position`-th disk on `bus`. Each SCSI disk gets its own target
 * on the one virtio-scsi controller. Without an address, libvirt 9.0 places a SCSI disk by its
 * `sdX` letter, 7 per controller, and adds controllers of its x86 default model, lsilogic.
 */
const driveAddress = (bus: DomainDiskBus, position: number): DomainAddressDrive | undefined => {
  switch (bus) {
    case "scsi":
      return { type: "drive", controller: 0, bus: 0, target: position, unit: 0 }
    case "sata":
      return {
        type: "drive",
        controller: Math.floor(position / sataPortsPerController),
        bus: 0,
        target: 0,
        unit: position % sataPortsPerController
      }
    case "ide":
      // NOTE: the pc machine has one IDE controller with 2 buses of 2 units. A fifth IDE
      // device gets bus 2, which does not exist, so QEMU fails to start.
      return {
        type: "drive",
        controller: 0,
        bus: Math.floor(position / 2),
        target: 0,
        unit: position % 2
      }
    default:
      return undefined
  }
}

/**
 * Gives each disk a target name and, on IDE, SATA and SCSI, a controller slot. Names come
 * from one counter per prefix across all disks and CD-ROMs, so a SCSI CD-ROM and a SATA disk
 * never both become `sda`.
 */
export const assignDiskTargets = (pending: ReadonlyArray<PendingDisk>): Array<DomainDisk> => {
  const namesUsed = new Map<string, number>()
  const slotsUsed = new Map<DomainDiskBus, number>()
  return pending.map(({ bus, ...disk }) => {
    const prefix = prefixes[bus]
    const name = namesUsed.get(prefix) ?? 0
    const slot = slotsUsed.get(bus) ?? 0
    namesUsed.set(prefix, name + 1)
    slotsUsed.set(bus, slot + 1)
    const target: DomainDiskTarget = { dev: `${prefix}${diskLetters(name)}`, bus }
    return { ...disk, target, address: driveAddress(bus, slot) }
  })
}
