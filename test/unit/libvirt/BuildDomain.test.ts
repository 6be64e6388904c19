import { describe, expect, test } from "bun:test"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { buildDomain, renderDomainXml } from "../../../src/libvirt/BuildDomain.ts"
import type { Domain } from "../../../src/libvirt/DomainModel.ts"
import { configurationTable, makeInputs } from "./fixtures.ts"

const goldenDir = join(import.meta.dir, "golden")
/** Set UPDATE_GOLDEN=1 to rewrite the golden files after an intended change of the XML. */
const updateGolden = process.env.UPDATE_GOLDEN === "1"

const goldenCases = [
  "uefi-q35-user-networking",
  "legacy-pc-ide",
  "secure-tpm-hyperv-intel",
  "aarch64-tcg-vnc",
  "multi-nic-passt-shares",
  "disk-nvme"
]

const tableEntry = (name: string) => {
  const entry = configurationTable.find(([key]) => key === name)
  if (entry === undefined) throw new Error(`no configuration named ${name} in fixtures.ts`)
  return entry[1]
}

/** Collects every boot order number, from libvirt devices and from QEMU arguments. */
const bootOrders = (domain: Domain): Array<number> => {
  const devices = [...domain.devices.disks, ...domain.devices.interfaces]
  const fromDevices = devices.flatMap((device) => (device.boot ? [device.boot.order] : []))
  const fromArgs = (domain.qemuCommandline?.args ?? []).flatMap((arg) => {
    const match = /"bootindex":(\d+)/.exec(arg)
    return match ? [Number(match[1])] : []
  })
  return [...fromDevices, ...fromArgs]
}

describe("renderDomainXml golden files", () => {
  for (const name of goldenCases) {
    test(name, () => {
      const xml = renderDomainXml(makeInputs(tableEntry(name)))
      const path = join(goldenDir, `${name}.xml`)
      if (updateGolden) writeFileSync(path, xml)
      if (!existsSync(path)) {
        throw new Error(`missing golden file ${path}; run with UPDATE_GOLDEN=1 to create it`)
      }
      expect(xml).toBe(readFileSync(path, "utf8"))
    })
  }
})

describe("buildDomain over the configuration table", () => {
  for (const [name, overrides] of configurationTable) {
    test(`${name} has unique disk targets`, () => {
      const targets = buildDomain(makeInputs(overrides)).devices.disks.map(
        (disk) => disk.target.dev
      )
      expect(new Set(targets).size).toBe(targets.length)
    })

    test(`${name} has unique boot orders`, () => {
      const orders = bootOrders(buildDomain(makeInputs(overrides)))
      expect(orders.length).toBeGreaterThan(0)
      expect(new Set(orders).size).toBe(orders.length)
    })
  }
})

describe("buildDomain", () => {
  test("domain type follows the accelerator", () => {
    expect(buildDomain(makeInputs({ accel: "kvm" })).type).toBe("kvm")
    expect(buildDomain(makeInputs({ accel: "tcg" })).type).toBe("qemu")
  })

  test("identity comes from the inputs", () => {
    const domain = buildDomain(makeInputs())
    expect(domain.name).toBe("testvm")
    expect(domain.uuid).toBe("6b1c6d4e-2f0a-4c1e-9b7a-3d5e8f9a0b1c")
  })

  test("power off and crash end the run", () => {
    const domain = buildDomain(makeInputs())
    expect(domain.onPoweroff).toBe("destroy")
    expect(domain.onReboot).toBe("restart")
    expect(domain.onCrash).toBe("destroy")
  })

  test("iothreads only when a disk uses one", () => {
    expect(buildDomain(makeInputs()).iothreads).toBe(1)
    const sata = makeInputs({ config: { storage: { bus: "sata" } } })
    expect(buildDomain(sata).iothreads).toBeUndefined()
    const scsi = makeInputs({ config: { storage: { bus: "scsi" } } })
    expect(buildDomain(scsi).iothreads).toBe(1)
  })

  test("passt leaves no QEMU arguments", () => {
    expect(buildDomain(makeInputs({ passt: true })).qemuCommandline).toBeUndefined()
  })

  test("rendering is deterministic", () => {
    const inputs = makeInputs(tableEntry("multi-nic-passt-shares"))
    expect(renderDomainXml(inputs)).toBe(renderDomainXml(inputs))
  })
})
