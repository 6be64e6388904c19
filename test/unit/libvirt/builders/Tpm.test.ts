import { describe, expect, test } from "bun:test"
import { buildTpms } from "../../../../src/libvirt/builders/Tpm.ts"
import { aavmf, makeInputs } from "../fixtures.ts"

describe("buildTpms", () => {
  test("no TPM unless asked", () => {
    expect(buildTpms(makeInputs())).toEqual([])
  })

  test("x86_64 gets a CRB TPM 2.0", () => {
    expect(buildTpms(makeInputs({ config: { boot: { tpm: true } } }))).toEqual([
      {
        model: "tpm-crb",
        backend: { type: "emulator", version: "2.0", persistentState: undefined }
      }
    ])
  })

  test("aarch64 gets a TIS TPM", () => {
    const inputs = makeInputs({
      firmware: aavmf,
      config: { arch: "aarch64", boot: { machine: "virt", tpm: true } }
    })
    expect(buildTpms(inputs)[0]?.model).toBe("tpm-tis")
  })

  test("PERSIST keeps the TPM state", () => {
    const inputs = makeInputs({ config: { boot: { tpm: true }, runtime: { persist: true } } })
    expect(buildTpms(inputs)[0]?.backend.persistentState).toBe("yes")
  })
})
