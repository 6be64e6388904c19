import { describe, expect, test } from "bun:test"
import { planBootOrder } from "../../../../src/libvirt/builders/BootOrder.ts"
import { buildCdroms } from "../../../../src/libvirt/builders/Cdroms.ts"
import {
  buildControllers,
  buildInputs,
  buildMemBalloon,
  buildRngs
} from "../../../../src/libvirt/builders/Controllers.ts"
import { buildStorageDisks } from "../../../../src/libvirt/builders/Disks.ts"
import { assignDiskTargets } from "../../../../src/libvirt/builders/DiskTargets.ts"
import type { DomainInputs } from "../../../../src/libvirt/DomainInputs.ts"
import { aavmf, makeInputs } from "../fixtures.ts"

const controllersOf = (inputs: DomainInputs) => {
  const boot = planBootOrder(inputs)
  const disks = assignDiskTargets([
    ...buildStorageDisks(inputs, boot).disks,
    ...buildCdroms(inputs, boot)
  ])
  return buildControllers(inputs, disks)
}

describe("buildControllers", () => {
  test("seed CD-ROM brings a virtio-scsi controller", () => {
    expect(controllersOf(makeInputs())).toEqual([
      { type: "scsi", index: 0, model: "virtio-scsi", driver: undefined },
      { type: "usb", index: 0, model: "qemu-xhci" }
    ])
  })

  test("no SCSI device, no SCSI controller", () => {
    const controllers = controllersOf(makeInputs({ seedIso: undefined }))
    expect(controllers.map((controller) => controller.type)).toEqual(["usb"])
  })

  test("pc machine needs no SCSI controller", () => {
    const inputs = makeInputs({
      firmware: undefined,
      config: { boot: { mode: "legacy", machine: "pc" } }
    })
    expect(controllersOf(inputs).map((controller) => controller.type)).toEqual(["usb"])
  })

  test("scsi disks put the I/O thread on the controller", () => {
    const [scsi] = controllersOf(makeInputs({ config: { storage: { bus: "scsi" } } }))
    expect(scsi?.driver).toEqual({ iothread: 1 })
  })

  test("scsi without IO_THREAD has no I/O thread", () => {
    const inputs = makeInputs({ config: { storage: { bus: "scsi", ioThread: false } } })
    expect(controllersOf(inputs)[0]?.driver).toBeUndefined()
  })

  test("USB=0 writes model none", () => {
    const controllers = controllersOf(makeInputs({ config: { devices: { usb: false } } }))
    expect(controllers.find((controller) => controller.type === "usb")?.model).toBe("none")
  })

  test("USB disks keep the USB controller", () => {
    const inputs = makeInputs({ config: { storage: { bus: "usb" }, devices: { usb: false } } })
    const usb = controllersOf(inputs).find((controller) => controller.type === "usb")
    expect(usb?.model).toBe("qemu-xhci")
  })
})

describe("buildInputs", () => {
  test("tablet with USB", () => {
    expect(buildInputs(makeInputs())).toEqual([{ type: "tablet", bus: "usb" }])
  })

  test("nothing without USB", () => {
    expect(buildInputs(makeInputs({ config: { devices: { usb: false } } }))).toEqual([])
  })

  test("aarch64 with graphics adds a keyboard", () => {
    const inputs = makeInputs({
      firmware: aavmf,
      config: { arch: "aarch64", boot: { machine: "virt" }, graphics: { mode: "vnc" } }
    })
    expect(buildInputs(inputs).map((input) => input.type)).toEqual(["tablet", "keyboard"])
  })
})

describe("buildMemBalloon", () => {
  test("virtio by default, none when off", () => {
    expect(buildMemBalloon(makeInputs())).toEqual({ model: "virtio" })
    const off = makeInputs({ config: { devices: { balloon: false } } })
    expect(buildMemBalloon(off)).toEqual({ model: "none" })
  })
})

describe("buildRngs", () => {
  test("virtio RNG from /dev/urandom", () => {
    expect(buildRngs(makeInputs())).toEqual([
      { model: "virtio", backend: { model: "random", path: "/dev/urandom" } }
    ])
  })

  test("nothing when off", () => {
    expect(buildRngs(makeInputs({ config: { devices: { rng: false } } }))).toEqual([])
  })
})
