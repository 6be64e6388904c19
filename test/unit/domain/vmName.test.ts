import { describe, expect, test } from "bun:test"
import { isContainerId, parseVmName } from "../../../src/domain/VmName.ts"

describe("parseVmName", () => {
  for (const name of ["devbox", "ubuntu-2404", "a", "VM_1.test", "0day", "a".repeat(63)]) {
    test(`accepts ${JSON.stringify(name)}`, () => {
      expect(parseVmName(name) as string | undefined).toBe(name)
    })
  }

  for (const name of [
    "",
    " ",
    ".",
    "..",
    "/",
    "../etc",
    "a/b",
    "my vm",
    " devbox",
    ".hidden",
    "-rf",
    "_x",
    "a".repeat(64),
    "vm\n",
    "vm;rm",
    "bücher"
  ]) {
    test(`rejects ${JSON.stringify(name)}`, () => {
      expect(parseVmName(name)).toBeUndefined()
    })
  }
})

describe("isContainerId", () => {
  test("Docker short and full ids", () => {
    expect(isContainerId("3f4e5a6b7c8d")).toBe(true)
    expect(isContainerId("ab".repeat(32))).toBe(true)
  })

  test("names that are not ids", () => {
    expect(isContainerId("devbox")).toBe(false)
    expect(isContainerId("3f4e5a6b7c8")).toBe(false)
    expect(isContainerId("3F4E5A6B7C8D")).toBe(false)
    expect(isContainerId("ab".repeat(33))).toBe(false)
    expect(isContainerId("deadbeef-cafe")).toBe(false)
  })
})
