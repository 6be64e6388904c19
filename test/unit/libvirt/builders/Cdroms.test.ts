import { describe, expect, test } from "bun:test"
import { planBootOrder } from "../../../../src/libvirt/builders/BootOrder.ts"
import { buildCdroms, cdromBus } from "../../../../src/libvirt/builders/Cdroms.ts"
import type { DomainInputs } from "../../../../src/libvirt/DomainInputs.ts"
import { aavmf, makeInputs } from "../fixtures.ts"

const cdroms = (inputs: DomainInputs) => buildCdroms(inputs, planBootOrder(inputs))

describe("cdromBus", () => {
  test("virtio-scsi on q35 and virt, IDE on pc", () => {
    expect(cdromBus("q35")).toBe("scsi")
    expect(cdromBus("virt")).toBe("scsi")
    expect(cdromBus("pc")).toBe("ide")
  })
})

describe("buildCdroms", () => {
  test("seed CD-ROM is read-only raw on scsi", () => {
    const [seed, ...rest] = cdroms(makeInputs())
    expect(rest).toEqual([])
    expect(seed).toEqual({
      type: "file",
      device: "cdrom",
      driver: { name: "qemu", type: "raw" },
      source: { file: "/var/lib/vm-runner/vms/testvm/seed.iso" },
      bus: "scsi",
      boot: undefined,
      readonly: true
    })
  })

  test("no seed without cloud-init", () => {
    expect(cdroms(makeInputs({ seedIso: undefined }))).toEqual([])
  })

  test("installer CD-ROM boots when cdrom is listed", () => {
    const inputs = makeInputs({
      installIso: "/images/install.iso",
      config: { boot: { order: ["cdrom", "hd"] } }
    })
    const [seed, install] = cdroms(inputs)
    expect(seed?.boot).toBeUndefined()
    expect(install?.source).toEqual({ file: "/images/install.iso" })
    expect(install?.boot).toEqual({ order: 1 })
    expect(install?.readonly).toBe(true)
  })

  test("installer CD-ROM without cdrom in the order", () => {
    const [install] = cdroms(makeInputs({ seedIso: undefined, installIso: "/images/a.iso" }))
    expect(install?.boot).toBeUndefined()
  })

  test("pc machine puts CD-ROMs on IDE", () => {
    const inputs = makeInputs({
      firmware: undefined,
      installIso: "/images/install.iso",
      config: { boot: { mode: "legacy", machine: "pc" } }
    })
    expect(cdroms(inputs).map((cdrom) => cdrom.bus)).toEqual(["ide", "ide"])
  })

  test("aarch64 puts CD-ROMs on scsi", () => {
    const inputs = makeInputs({
      accel: "tcg",
      firmware: aavmf,
      config: { arch: "aarch64", boot: { machine: "virt" } }
    })
    expect(cdroms(inputs).map((cdrom) => cdrom.bus)).toEqual(["scsi"])
  })

  test("CD-ROMs ignore DISK_TYPE", () => {
    for (const bus of ["virtio", "sata", "usb", "nvme"] as const) {
      const inputs = makeInputs({ config: { storage: { bus } } })
      expect(cdroms(inputs).map((cdrom) => cdrom.bus)).toEqual(["scsi"])
    }
  })
})
