import type { DiskCache, DiskIo } from "../../domain/Config.ts"
import type { DomainInputs } from "../DomainInputs.ts"
import type { DomainDiskBus } from "../DomainModel.ts"
import type { BootOrderPlan } from "./BootOrder.ts"
import type { PendingDisk } from "./DiskTargets.ts"

/** The one I/O thread that virtio disks and the virtio-scsi controller share. */
export const ioThreadId = 1

/**
 * One storage disk before it is tied to a bus: the work disk (`DISK_SIZE`), an extra disk
 * (`DISKn_SIZE`) or a host block device (`DEVICE`, `DEVICEn`). `name` is the lower-case stem
 * of that variable (`disk`, `disk2`, `device`); it names the disk in QEMU ids and NVMe serials.
 */
export interface StorageDisk {
  readonly name: string
  readonly kind: "file" | "block"
  readonly path: string
  readonly format: "qcow2" | "raw"
  readonly cache: DiskCache
  readonly io: DiskIo
  readonly bootOrder: number | undefined
  /** Logical and physical sector size in bytes, when it is not 512. */
  readonly blockSize: number | undefined
}

/**
 * Lists the work disk, the extra disks and the block devices, in that order. File disks use
 * the cache and I/O modes after the O_DIRECT probe of the VM directory. Block devices always
 * support O_DIRECT, so they keep `DISK_CACHE` and `DISK_IO` as configured.
 */
export const listStorageDisks = (inputs: DomainInputs, boot: BootOrderPlan): Array<StorageDisk> => {
  const storage = inputs.config.storage
  const fileDisk = { kind: "file", cache: inputs.diskCache, io: inputs.diskIo } as const
  const workDisk: StorageDisk = {
    ...fileDisk,
    name: "disk",
    path: inputs.workDisk.path,
    format: inputs.workDisk.format,
    bootOrder: boot.workDisk,
    blockSize: undefined
  }
  const extraDisks = inputs.extraDisks.map(
    (disk): StorageDisk => ({
      ...fileDisk,
      name: `disk${disk.index}`,
      path: disk.path,
      // The storage step creates every extra disk as qcow2 (`Layout.extraDisk`).
      format: "qcow2",
      bootOrder: undefined,
      blockSize: undefined
    })
  )
  const blockDevices = storage.blockDevices.map((device): StorageDisk => {
    const sectorSize = inputs.blockSectorSizes.get(device.path)
    return {
      name: device.index === 1 ? "device" : `device${device.index}`,
      kind: "block",
      path: device.path,
      format: "raw",
      cache: storage.cache,
      io: storage.io,
      bootOrder: undefined,
      blockSize: sectorSize !== undefined && sectorSize !== 512 ? sectorSize : undefined
    }
  })
  return [workDisk, ...extraDisks, ...blockDevices]
}

/**
 * Turns a storage disk into a libvirt `<disk>` on `DISK_TYPE`'s bus. Only virtio disks take
 * the I/O thread; SCSI disks get it through their controller. `discard='unmap'` passes the
 * guest's TRIM to image files so they shrink again; a block device keeps its blocks.
 */
export const toPendingDisk = (
  disk: StorageDisk,
  bus: DomainDiskBus,
  ioThread: boolean
): PendingDisk => ({
  type: disk.kind,
  device: "disk",
  driver: {
    name: "qemu",
    type: disk.format,
    cache: disk.cache,
    io: disk.io,
    discard: disk.kind === "file" ? "unmap" : undefined,
    iothread: ioThread && bus === "virtio" ? ioThreadId : undefined
  },
  source: disk.kind === "file" ? { file: disk.path } : { dev: disk.path },
  bus,
  blockio:
    disk.blockSize === undefined
      ? undefined
      : { logicalBlockSize: disk.blockSize, physicalBlockSize: disk.blockSize },
  boot: disk.bootOrder === undefined ? undefined : { order: disk.bootOrder },
  readonly: false
})

export interface StorageDevices {
  /** Disks libvirt attaches. */
  readonly disks: ReadonlyArray<PendingDisk>
  /** Disks on the NVMe bus, attached through QEMU arguments. */
  readonly nvmeDisks: ReadonlyArray<StorageDisk>
}

/**
 * Builds the storage disks on `DISK_TYPE`'s bus. libvirt 9.0 has no NVMe disk bus, so with
 * `DISK_TYPE=nvme` the disks are returned for `buildQemuCommandline` to attach instead.
 */
export const buildStorageDisks = (inputs: DomainInputs, boot: BootOrderPlan): StorageDevices => {
  const { bus, ioThread } = inputs.config.storage
  const disks = listStorageDisks(inputs, boot)
  if (bus === "nvme") return { disks: [], nvmeDisks: disks }
  return { disks: disks.map((disk) => toPendingDisk(disk, bus, ioThread)), nvmeDisks: [] }
}
