import { describe, expect, test } from "bun:test"
import { assignDiskTargets } from "../../../../src/libvirt/builders/DiskTargets.ts"
import { buildMemory, countIoThreads } from "../../../../src/libvirt/builders/Memory.ts"
import type { DomainController } from "../../../../src/libvirt/DomainModel.ts"
import { makeInputs, makeShare } from "../fixtures.ts"

describe("buildMemory", () => {
  test("memory and vCPUs come from the configuration", () => {
    const memory = buildMemory(makeInputs({ config: { memoryMiB: 8192, cpus: 6 } }))
    expect(memory.memory).toEqual({ unit: "MiB", value: 8192 })
    expect(memory.currentMemory).toEqual({ unit: "MiB", value: 8192 })
    expect(memory.vcpu).toEqual({ placement: "static", value: 6 })
  })

  test("no memory backing without virtiofs", () => {
    expect(buildMemory(makeInputs()).memoryBacking).toBeUndefined()
    const ninep = makeInputs({ config: { filesystems: [makeShare({ driver: "9p" })] } })
    expect(buildMemory(ninep).memoryBacking).toBeUndefined()
  })

  test("virtiofs shares memory through memfd", () => {
    const inputs = makeInputs({ config: { filesystems: [makeShare({ driver: "virtiofs" })] } })
    expect(buildMemory(inputs).memoryBacking).toEqual({
      source: { type: "memfd" },
      access: { mode: "shared" }
    })
  })
})

describe("countIoThreads", () => {
  const disk = (iothread: number | undefined) =>
    assignDiskTargets([
      {
        type: "file",
        device: "disk",
        driver: { name: "qemu", type: "qcow2", iothread },
        source: { file: "/d.qcow2" },
        bus: "virtio",
        readonly: false
      }
    ])

  test("undefined when nothing uses one", () => {
    expect(countIoThreads(disk(undefined), [])).toBeUndefined()
  })

  test("counts disk and controller references", () => {
    expect(countIoThreads(disk(1), [])).toBe(1)
    const scsi: DomainController = {
      type: "scsi",
      index: 0,
      model: "virtio-scsi",
      driver: { iothread: 1 }
    }
    expect(countIoThreads(disk(undefined), [scsi])).toBe(1)
  })
})
