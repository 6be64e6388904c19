import type { MachineType } from "../../domain/Config.ts"
import type { DomainInputs } from "../DomainInputs.ts"
import type { DomainDiskBus } from "../DomainModel.ts"
import type { BootOrderPlan } from "./BootOrder.ts"
import type { PendingDisk } from "./DiskTargets.ts"

/**
 * The bus for CD-ROMs. Debian's cloud kernel has no AHCI driver, so a SATA CD-ROM is
 * invisible to it and cloud-init never finds its seed. Every cloud kernel has virtio-scsi,
 * which q35 and virt can carry. The pc machine has a built-in IDE controller that every
 * kernel drives, and SeaBIOS boots from it.
 */
export const cdromBus = (machine: MachineType): DomainDiskBus => (machine === "pc" ? "ide" : "scsi")

const cdrom = (path: string, bus: DomainDiskBus, bootOrder: number | undefined): PendingDisk => ({
  type: "file",
  device: "cdrom",
  driver: { name: "qemu", type: "raw" },
  source: { file: path },
  bus,
  boot: bootOrder === undefined ? undefined : { order: bootOrder },
  readonly: true
})

/** Builds the NoCloud seed CD-ROM and the installer CD-ROM, when each is attached. */
export const buildCdroms = (inputs: DomainInputs, boot: BootOrderPlan): Array<PendingDisk> => {
  const bus = cdromBus(inputs.config.boot.machine)
  const cdroms: Array<PendingDisk> = []
  if (inputs.seedIso !== undefined) cdroms.push(cdrom(inputs.seedIso, bus, undefined))
  if (inputs.installIso !== undefined) {
    cdroms.push(cdrom(inputs.installIso, bus, boot.installCdrom))
  }
  return cdroms
}
