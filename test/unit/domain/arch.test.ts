import { describe, expect, test } from "bun:test"
import { hostArch, normalizeArch } from "../../../src/domain/Arch.ts"

describe("normalizeArch", () => {
  const names: ReadonlyArray<readonly [string, string]> = [
    ["x86_64", "x86_64"],
    ["amd64", "x86_64"],
    ["AMD64", "x86_64"],
    [" x86_64 ", "x86_64"],
    ["aarch64", "aarch64"],
    ["arm64", "aarch64"],
    ["ARM64", "aarch64"]
  ]
  for (const [name, arch] of names) {
    test(`maps ${JSON.stringify(name)}`, () => {
      expect(normalizeArch(name) as string | undefined).toBe(arch)
    })
  }

  for (const name of [
    "",
    "x86",
    "i386",
    "arm",
    "armv7l",
    "riscv64",
    "x64",
    "constructor",
    "__proto__",
    "hasOwnProperty"
  ]) {
    test(`rejects ${JSON.stringify(name)}`, () => {
      expect(normalizeArch(name)).toBeUndefined()
    })
  }
})

test("hostArch names this machine", () => {
  const qemuNames: Record<string, string> = { x64: "x86_64", arm64: "aarch64" }
  expect(hostArch() as string | undefined).toBe(qemuNames[process.arch])
})
