import { describe, expect, test } from "bun:test"
import type { DiskBus } from "../../../../src/domain/Config.ts"
import { planBootOrder } from "../../../../src/libvirt/builders/BootOrder.ts"
import { buildCdroms } from "../../../../src/libvirt/builders/Cdroms.ts"
import { buildStorageDisks, listStorageDisks } from "../../../../src/libvirt/builders/Disks.ts"
import {
  assignDiskTargets,
  diskLetters,
  type PendingDisk
} from "../../../../src/libvirt/builders/DiskTargets.ts"
import type { DomainInputs } from "../../../../src/libvirt/DomainInputs.ts"
import { type InputsOverrides, makeInputs, vmDir } from "../fixtures.ts"

const extraDisks = [
  { index: 3, path: `${vmDir}/disk3.qcow2` },
  { index: 5, path: `${vmDir}/disk5.qcow2` }
]

/** Two extra disks with a gap (DISK3, DISK5) and two block devices. */
const manyDisks = (bus: DiskBus, overrides: InputsOverrides = {}): DomainInputs =>
  makeInputs({
    extraDisks,
    blockSectorSizes: new Map([["/dev/sdc", 4096]]),
    ...overrides,
    config: {
      storage: {
        bus,
        blockDevices: [
          { index: 1, path: "/dev/sdb" },
          { index: 2, path: "/dev/sdc" }
        ]
      },
      ...overrides.config
    }
  })

const allDisks = (inputs: DomainInputs) => {
  const boot = planBootOrder(inputs)
  return assignDiskTargets([...buildStorageDisks(inputs, boot).disks, ...buildCdroms(inputs, boot)])
}

describe("listStorageDisks", () => {
  test("work disk, extra disks, then block devices", () => {
    const inputs = manyDisks("virtio")
    const disks = listStorageDisks(inputs, planBootOrder(inputs))
    expect(disks.map((disk) => disk.name)).toEqual(["disk", "disk3", "disk5", "device", "device2"])
    expect(disks.map((disk) => disk.kind)).toEqual(["file", "file", "file", "block", "block"])
  })

  test("only the work disk boots", () => {
    const inputs = manyDisks("virtio")
    const disks = listStorageDisks(inputs, planBootOrder(inputs))
    expect(disks.map((disk) => disk.bootOrder)).toEqual([
      1,
      undefined,
      undefined,
      undefined,
      undefined
    ])
  })

  test("file disks use the probed I/O modes", () => {
    const inputs = manyDisks("virtio", { diskIo: "threads", diskCache: "writeback" })
    const [work, extra] = listStorageDisks(inputs, planBootOrder(inputs))
    expect(work).toMatchObject({ cache: "writeback", io: "threads", format: "qcow2" })
    expect(extra).toMatchObject({ cache: "writeback", io: "threads", format: "qcow2" })
  })

  test("block devices keep the configured modes", () => {
    const inputs = manyDisks("virtio", { diskIo: "threads", diskCache: "writeback" })
    const block = listStorageDisks(inputs, planBootOrder(inputs))[3]
    expect(block).toMatchObject({ cache: "none", io: "native", format: "raw" })
  })

  test("sector size only when not 512", () => {
    const inputs = manyDisks("virtio", {
      blockSectorSizes: new Map([
        ["/dev/sdb", 512],
        ["/dev/sdc", 4096]
      ])
    })
    const disks = listStorageDisks(inputs, planBootOrder(inputs))
    expect(disks[3]?.blockSize).toBeUndefined()
    expect(disks[4]?.blockSize).toBe(4096)
  })

  test("raw work disk keeps its format", () => {
    const inputs = makeInputs({ workDisk: { path: `${vmDir}/disk.raw`, format: "raw" } })
    expect(listStorageDisks(inputs, planBootOrder(inputs))[0]?.format).toBe("raw")
  })
})

describe("buildStorageDisks", () => {
  test("virtio disks get the I/O thread", () => {
    const disks = allDisks(manyDisks("virtio"))
    const storage = disks.filter((disk) => disk.device === "disk")
    expect(storage.map((disk) => disk.driver.iothread)).toEqual([1, 1, 1, 1, 1])
  })

  test("IO_THREAD=0 drops the I/O thread", () => {
    const disks = allDisks(manyDisks("virtio", { config: { storage: { ioThread: false } } }))
    expect(disks.every((disk) => disk.driver.iothread === undefined)).toBe(true)
  })

  test("other buses never get the I/O thread", () => {
    for (const bus of ["scsi", "sata", "usb"] as const) {
      const disks = allDisks(manyDisks(bus))
      expect(disks.every((disk) => disk.driver.iothread === undefined)).toBe(true)
    }
  })

  test("file disks discard, block devices do not", () => {
    const disks = allDisks(manyDisks("virtio")).filter((disk) => disk.device === "disk")
    expect(disks.map((disk) => disk.driver.discard)).toEqual([
      "unmap",
      "unmap",
      "unmap",
      undefined,
      undefined
    ])
  })

  test("block devices are raw block disks", () => {
    const block = allDisks(manyDisks("virtio"))[3]
    expect(block?.type).toBe("block")
    expect(block?.source).toEqual({ dev: "/dev/sdb" })
    expect(block?.driver.type).toBe("raw")
    expect(block?.blockio).toBeUndefined()
  })

  test("4K block device gets blockio", () => {
    const block = allDisks(manyDisks("virtio"))[4]
    expect(block?.blockio).toEqual({ logicalBlockSize: 4096, physicalBlockSize: 4096 })
  })

  test("nvme disks leave libvirt's list", () => {
    const inputs = manyDisks("nvme")
    const storage = buildStorageDisks(inputs, planBootOrder(inputs))
    expect(storage.disks).toEqual([])
    expect(storage.nvmeDisks.map((disk) => disk.name)).toEqual([
      "disk",
      "disk3",
      "disk5",
      "device",
      "device2"
    ])
  })
})

describe("assignDiskTargets", () => {
  test("letters continue past z", () => {
    expect([0, 1, 25, 26, 27, 51, 52, 701, 702].map(diskLetters)).toEqual([
      "a",
      "b",
      "z",
      "aa",
      "ab",
      "az",
      "ba",
      "zz",
      "aaa"
    ])
  })

  test("virtio disks are vda onwards", () => {
    const disks = allDisks(manyDisks("virtio", { seedIso: undefined }))
    expect(disks.map((disk) => disk.target.dev)).toEqual(["vda", "vdb", "vdc", "vdd", "vde"])
    expect(disks.every((disk) => disk.address === undefined)).toBe(true)
  })

  test("gaps in DISKn never reuse a name", () => {
    const targets = allDisks(manyDisks("virtio")).map((disk) => disk.target.dev)
    expect(new Set(targets).size).toBe(targets.length)
  })

  for (const bus of ["virtio", "scsi", "sata", "usb"] as const) {
    test(`${bus} disks and CD-ROMs never share a name`, () => {
      const disks = allDisks(manyDisks(bus, { installIso: "/images/install.iso" }))
      const targets = disks.map((disk) => disk.target.dev)
      expect(disks).toHaveLength(7)
      expect(new Set(targets).size).toBe(targets.length)
    })
  }

  test("scsi disks and CD-ROMs share sd names", () => {
    const disks = allDisks(manyDisks("scsi", { installIso: "/images/install.iso" }))
    expect(disks.map((disk) => disk.target.dev)).toEqual([
      "sda",
      "sdb",
      "sdc",
      "sdd",
      "sde",
      "sdf",
      "sdg"
    ])
  })

  test("each scsi device gets its own target", () => {
    const disks = allDisks(manyDisks("scsi", { installIso: "/images/install.iso" }))
    expect(disks.map((disk) => disk.address?.target)).toEqual([0, 1, 2, 3, 4, 5, 6])
    expect(disks.every((disk) => disk.address?.controller === 0)).toBe(true)
    expect(disks.every((disk) => disk.address?.unit === 0)).toBe(true)
  })

  test("sata fills six ports per controller", () => {
    const pending: Array<PendingDisk> = Array.from({ length: 8 }, (_, position) => ({
      type: "file",
      device: "disk",
      driver: { name: "qemu", type: "qcow2" },
      source: { file: `/d${position}.qcow2` },
      bus: "sata",
      readonly: false
    }))
    const addresses = assignDiskTargets(pending).map((disk) => disk.address)
    expect(addresses.map((address) => address?.controller)).toEqual([0, 0, 0, 0, 0, 0, 1, 1])
    expect(addresses.map((address) => address?.unit)).toEqual([0, 1, 2, 3, 4, 5, 0, 1])
  })

  test("sata disks with scsi CD-ROMs", () => {
    const disks = allDisks(makeInputs({ config: { storage: { bus: "sata" } } }))
    expect(disks.map((disk) => [disk.target.dev, disk.target.bus])).toEqual([
      ["sda", "sata"],
      ["sdb", "scsi"]
    ])
    expect(disks[0]?.address).toMatchObject({ controller: 0, unit: 0 })
    expect(disks[1]?.address).toMatchObject({ controller: 0, target: 0, unit: 0 })
  })

  test("ide fills two units on two buses", () => {
    const inputs = makeInputs({
      firmware: undefined,
      installIso: "/images/install.iso",
      extraDisks: [{ index: 2, path: `${vmDir}/disk2.qcow2` }],
      config: { storage: { bus: "ide" }, boot: { mode: "legacy", machine: "pc" } }
    })
    const disks = allDisks(inputs)
    expect(disks.map((disk) => disk.target.dev)).toEqual(["hda", "hdb", "hdc", "hdd"])
    expect(disks.map((disk) => [disk.address?.bus, disk.address?.unit])).toEqual([
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1]
    ])
  })
})
