import { describe, expect, test } from "bun:test"
import {
  buildClock,
  buildFeatures,
  buildHyperV,
  buildPm
} from "../../../../src/libvirt/builders/Features.ts"
import type { DomainInputs } from "../../../../src/libvirt/DomainInputs.ts"
import type { DomainPm } from "../../../../src/libvirt/DomainModel.ts"
import { aavmf, amdHost, intelHost, makeInputs, ovmfSecureBoot } from "../fixtures.ts"

const hyperv = (overrides: Partial<Pick<DomainInputs, "hostCpu" | "accel">> = {}) =>
  makeInputs({ ...overrides, config: { devices: { hyperv: true } } })

const aarch64 = (accel: DomainInputs["accel"]) =>
  makeInputs({ accel, firmware: aavmf, config: { arch: "aarch64", boot: { machine: "virt" } } })

describe("buildFeatures", () => {
  test("x86_64 has acpi and apic only", () => {
    const features = buildFeatures(makeInputs())
    expect(features).toEqual({
      acpi: true,
      apic: true,
      hyperv: undefined,
      gic: undefined,
      smm: undefined
    })
  })

  test("secure boot firmware turns SMM on", () => {
    const features = buildFeatures(
      makeInputs({ firmware: ovmfSecureBoot, config: { boot: { mode: "secure", tpm: true } } })
    )
    expect(features.smm).toEqual({ state: "on" })
  })

  test("aarch64 under TCG asks for GICv3", () => {
    const features = buildFeatures(aarch64("tcg"))
    expect(features.acpi).toBe(true)
    expect(features.apic).toBe(false)
    expect(features.gic).toEqual({ version: "3" })
  })

  test("aarch64 under KVM leaves the GIC to libvirt", () => {
    expect(buildFeatures(aarch64("kvm")).gic).toBeUndefined()
  })

  test("HYPERV adds the enlightenments", () => {
    expect(buildFeatures(hyperv()).hyperv?.mode).toBe("custom")
  })

  test("no enlightenments under TCG", () => {
    expect(buildFeatures(hyperv({ accel: "tcg" })).hyperv).toBeUndefined()
  })
})

describe("buildHyperV", () => {
  test("common enlightenments are on", () => {
    const features = buildHyperV(hyperv())
    for (const name of [
      "relaxed",
      "vapic",
      "vpindex",
      "runtime",
      "synic",
      "stimer",
      "reset",
      "frequencies",
      "tlbflush",
      "ipi"
    ] as const) {
      expect(features[name]).toEqual({ state: "on" })
    }
    expect(features.spinlocks).toEqual({ state: "on", retries: 8191 })
  })

  test("evmcs is never written", () => {
    expect(buildHyperV(hyperv({ hostCpu: intelHost })).evmcs).toBeUndefined()
    expect(buildHyperV(hyperv({ hostCpu: amdHost })).evmcs).toBeUndefined()
  })

  test("avic follows AMD AVIC", () => {
    expect(buildHyperV(hyperv({ hostCpu: amdHost })).avic).toEqual({ state: "on" })
    const withoutAvic = { vendor: "amd", flags: new Set(["svm"]) } as const
    expect(buildHyperV(hyperv({ hostCpu: withoutAvic })).avic).toBeUndefined()
  })

  test("avic follows Intel APICv", () => {
    expect(buildHyperV(hyperv({ hostCpu: intelHost })).avic).toEqual({ state: "on" })
    const withoutApicv = { vendor: "intel", flags: new Set(["vmx", "ept"]) } as const
    expect(buildHyperV(hyperv({ hostCpu: withoutApicv })).avic).toBeUndefined()
  })

  test("avic ignores flags of the other vendor", () => {
    const intelWithAvic = { vendor: "intel", flags: new Set(["vmx", "avic"]) } as const
    expect(buildHyperV(hyperv({ hostCpu: intelWithAvic })).avic).toBeUndefined()
    const other = { vendor: "other", flags: new Set(["avic", "apicv"]) } as const
    expect(buildHyperV(hyperv({ hostCpu: other })).avic).toBeUndefined()
  })
})

describe("buildClock", () => {
  test("plain guests use UTC", () => {
    expect(buildClock(makeInputs())).toEqual({ offset: "utc", timers: [] })
  })

  test("HYPERV uses localtime and hypervclock", () => {
    expect(buildClock(hyperv())).toEqual({
      offset: "localtime",
      timers: [{ name: "hypervclock", present: "yes" }]
    })
  })

  test("HYPERV under TCG keeps localtime only", () => {
    expect(buildClock(hyperv({ accel: "tcg" }))).toEqual({ offset: "localtime", timers: [] })
  })
})

describe("buildPm", () => {
  test("absent without HYPERV", () => {
    expect(buildPm(makeInputs())).toBeUndefined()
  })

  test("HYPERV disables S3 and S4 on q35 and pc", () => {
    const expected: DomainPm = {
      suspendToMem: { enabled: "no" },
      suspendToDisk: { enabled: "no" }
    }
    expect(buildPm(hyperv())).toEqual(expected)
    const pc = makeInputs({
      firmware: undefined,
      config: { boot: { mode: "legacy", machine: "pc" }, devices: { hyperv: true } }
    })
    expect(buildPm(pc)).toEqual(expected)
    expect(buildPm(hyperv({ accel: "tcg" }))).toEqual(expected)
  })
})
