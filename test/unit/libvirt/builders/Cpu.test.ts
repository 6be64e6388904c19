import { describe, expect, test } from "bun:test"
import { buildCpu } from "../../../../src/libvirt/builders/Cpu.ts"
import type { DomainInputs } from "../../../../src/libvirt/DomainInputs.ts"
import type { DomainCpu } from "../../../../src/libvirt/DomainModel.ts"
import { baseConfig, makeInputs } from "../fixtures.ts"

const cpuFor = (cpuModel: string, accel: DomainInputs["accel"], arch = baseConfig.arch) =>
  buildCpu(makeInputs({ accel, config: { arch, devices: { cpuModel } } }))

describe("buildCpu", () => {
  test("host under KVM passes the CPU through", () => {
    expect(cpuFor("host", "kvm")).toEqual({ mode: "host-passthrough" })
    expect(cpuFor("host-passthrough", "kvm")).toEqual({ mode: "host-passthrough" })
  })

  test("host under TCG becomes maximum", () => {
    expect(cpuFor("host", "tcg")).toEqual({ mode: "maximum" })
    expect(cpuFor("host-passthrough", "tcg")).toEqual({ mode: "maximum" })
    expect(cpuFor("host", "tcg", "aarch64")).toEqual({ mode: "maximum" })
  })

  test("host-model depends on the accelerator", () => {
    expect(cpuFor("host-model", "kvm")).toEqual({ mode: "host-model" })
    expect(cpuFor("host-model", "tcg")).toEqual({ mode: "maximum" })
  })

  test("max selects maximum everywhere", () => {
    expect(cpuFor("max", "kvm")).toEqual({ mode: "maximum" })
    expect(cpuFor("maximum", "tcg")).toEqual({ mode: "maximum" })
  })

  test("named model is custom with fallback", () => {
    const expected: DomainCpu = {
      mode: "custom",
      match: "exact",
      model: { fallback: "allow", value: "Skylake-Client" }
    }
    expect(cpuFor("Skylake-Client", "kvm")).toEqual(expected)
    expect(cpuFor("Skylake-Client", "tcg")).toEqual(expected)
  })
})
