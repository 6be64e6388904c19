import {
  type ByteSize,
  byteSize,
  formatByteSize,
  GiB,
  humanByteSize
} from "../../domain/ByteSize.ts"
import type {
  BlockDevice,
  DiskBus,
  DiskCache,
  DiskIo,
  ExtraDisk,
  MachineType,
  Storage
} from "../../domain/Config.ts"
import { describePathKind, type HostFacts } from "../../host/HostFacts.ts"
import type { EnvReader } from "../Env.ts"

export const defaultDiskSize = (20 * GiB) as ByteSize
/** Indexes of the extra disk variables `DISK2_SIZE` to `DISK6_SIZE` and `DEVICE2` to `DEVICE6`. */
export const extraIndexes = [2, 3, 4, 5, 6] as const

/**
 * Resolves `DISK_SIZE`, where `max` and `half` take 90% and 50% of the free space of the
 * filesystem that will hold the VM directory, rounded down to whole GiB.
 */
const resolveDiskSize = (reader: EnvReader, host: HostFacts, vmDir: string): ByteSize => {
  const raw = reader.get("DISK_SIZE")?.toLowerCase()
  if (raw === "max" || raw === "half") {
    const free = host.freeBytes(vmDir)
    const share = raw === "max" ? 0.9 : 0.5
    const wholeGiB = Math.floor(((free ?? 0) * share) / GiB)
    if (free === undefined || wholeGiB < 1) {
      reader.problem(
        "DISK_SIZE",
        free === undefined
          ? `cannot read the free space of the filesystem of ${vmDir}; set a size instead`
          : `only ${humanByteSize(free)} is free on the filesystem of ${vmDir}, so ${raw} ` +
              "gives less than 1 GiB; free some space or set a size",
        "DISK_SIZE=20G"
      )
      return defaultDiskSize
    }
    const size = byteSize(wholeGiB * GiB)
    reader.notes.push(
      `DISK_SIZE=${raw} resolved to ${formatByteSize(size)} (${humanByteSize(free)} free ` +
        `on the filesystem of ${vmDir})`
    )
    return size
  }
  return reader.size("DISK_SIZE", "20G") ?? defaultDiskSize
}

/**
 * Reports `DISKn_SIZE` and `DEVICEn` outside 2 to 6, which would otherwise be ignored. The first
 * disk and device have no number, and the configuration reference stops at 6.
 */
const checkExtraIndexes = (reader: EnvReader): void => {
  for (const [name, value] of Object.entries(reader.env)) {
    if (value === undefined || value.trim() === "") continue
    const match = /^DISK(\d+)_SIZE$/.exec(name) ?? /^DEVICE(\d+)$/.exec(name)
    if (match === null) continue
    // Compared as text, so DISK02_SIZE, which nothing reads, is reported too.
    if (extraIndexes.some((index) => String(index) === match[1])) continue
    if (name.startsWith("DISK")) {
      reader.problem(
        name,
        "additional disks are DISK2_SIZE to DISK6_SIZE (DISK_SIZE sizes the main disk)",
        "DISK2_SIZE=50G"
      )
    } else {
      reader.problem(
        name,
        "passed-through block devices are DEVICE, then DEVICE2 to DEVICE6",
        "DEVICE2=/dev/sdc"
      )
    }
  }
}

const resolveExtraDisks = (reader: EnvReader): ReadonlyArray<ExtraDisk> =>
  extraIndexes.flatMap((index) => {
    const size = reader.size(`DISK${index}_SIZE`, "50G")
    return size === undefined ? [] : [{ index, size }]
  })

const resolveBlockDevices = (reader: EnvReader, host: HostFacts): ReadonlyArray<BlockDevice> =>
  [1, ...extraIndexes].flatMap((index) => {
    const name = index === 1 ? "DEVICE" : `DEVICE${index}`
    const path = reader.get(name)
    if (path === undefined) return []
    const kind = host.pathKind(path)
    if (kind !== "block") {
      const found =
        kind === "missing"
          ? "it does not exist"
          : `it is ${describePathKind(kind)}, not a block device`
      reader.problem(
        name,
        `expected the path of a host block device, but ${found}; pass it to the container ` +
          "with --device",
        `${name}=/dev/sdb`
      )
      return []
    }
    return [{ index, path }]
  })

const buses = ["virtio", "scsi", "nvme", "sata", "ide", "usb"] as const

export const resolveStorage = (
  reader: EnvReader,
  host: HostFacts,
  vmDir: string,
  machine: MachineType
): Storage => {
  const diskSize = resolveDiskSize(reader, host, vmDir)
  const bus = reader.choice("DISK_TYPE", "virtio", buses) as DiskBus
  if (bus === "ide" && machine !== "pc") {
    reader.problem(
      "DISK_TYPE",
      `the ${machine} machine type has no IDE controller; use sata, or MACHINE=pc with ide`,
      "DISK_TYPE=sata"
    )
  }
  if ((bus === "sata" || bus === "ide" || bus === "nvme") && machine === "virt") {
    reader.problem(
      "DISK_TYPE",
      "aarch64 guests support virtio, scsi and usb disks",
      "DISK_TYPE=virtio"
    )
  }
  const io: DiskIo = reader.choice("DISK_IO", "native", ["native", "threads", "io_uring"] as const)
  const cache: DiskCache = reader.choice("DISK_CACHE", "none", [
    "none",
    "writeback",
    "writethrough",
    "directsync",
    "unsafe"
  ] as const)
  if (io === "native" && cache !== "none" && cache !== "directsync" && reader.isSet("DISK_IO")) {
    reader.problem(
      "DISK_IO",
      `QEMU allows io=native only with O_DIRECT caches (none, directsync), not DISK_CACHE=${cache}`,
      "DISK_IO=threads"
    )
  }
  checkExtraIndexes(reader)
  return {
    diskSize,
    bus,
    // NOTE: with a page-cache mode and the default io=native, native would make QEMU refuse to
    // start, so the default io follows the cache mode; an explicit DISK_IO=native is an error.
    io: io === "native" && cache !== "none" && cache !== "directsync" ? "threads" : io,
    cache,
    ioThread: reader.bool("IO_THREAD", true),
    preallocate: reader.bool("ALLOCATE", false),
    extraDisks: resolveExtraDisks(reader),
    blockDevices: resolveBlockDevices(reader, host)
  }
}
