import { describe, expect, test } from "bun:test"
import { buildOs } from "../../../../src/libvirt/builders/Os.ts"
import { aavmf, makeInputs, ovmf, ovmfSecureBoot } from "../fixtures.ts"

describe("buildOs", () => {
  test("uefi uses OVMF and the VM's own nvram", () => {
    const os = buildOs(makeInputs({ firmware: ovmf }))
    expect(os.type).toEqual({ arch: "x86_64", machine: "q35", value: "hvm" })
    expect(os.loader).toEqual({
      readonly: "yes",
      secure: "no",
      type: "pflash",
      path: "/usr/share/OVMF/OVMF_CODE_4M.fd"
    })
    expect(os.nvram).toEqual({ template: "/usr/share/OVMF/OVMF_VARS_4M.fd", path: ovmf.nvram })
  })

  test("nvram is not the read-only template", () => {
    const os = buildOs(makeInputs({ firmware: ovmf }))
    expect(os.nvram?.path).not.toBe(os.nvram?.template)
    expect(os.nvram?.path).not.toBe(os.loader?.path)
  })

  test("secure boot marks the loader secure", () => {
    const os = buildOs(
      makeInputs({ firmware: ovmfSecureBoot, config: { boot: { mode: "secure", tpm: true } } })
    )
    expect(os.loader?.secure).toBe("yes")
    expect(os.loader?.path).toBe("/usr/share/OVMF/OVMF_CODE_4M.ms.fd")
    expect(os.nvram?.template).toBe("/usr/share/OVMF/OVMF_VARS_4M.ms.fd")
  })

  test("legacy has no loader and no nvram", () => {
    const os = buildOs(
      makeInputs({ firmware: undefined, config: { boot: { mode: "legacy", machine: "pc" } } })
    )
    expect(os.type.machine).toBe("pc")
    expect(os.loader).toBeUndefined()
    expect(os.nvram).toBeUndefined()
  })

  test("aarch64 uses AAVMF on virt", () => {
    const os = buildOs(
      makeInputs({ firmware: aavmf, config: { arch: "aarch64", boot: { machine: "virt" } } })
    )
    expect(os.type).toEqual({ arch: "aarch64", machine: "virt", value: "hvm" })
    expect(os.loader?.path).toBe("/usr/share/AAVMF/AAVMF_CODE.fd")
    expect(os.loader?.secure).toBe("no")
  })
})
