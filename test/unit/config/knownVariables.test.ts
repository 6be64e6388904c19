import { describe, expect, test } from "bun:test"
import {
  editDistance,
  isKnownVariable,
  knownVariables,
  typoWarnings
} from "../../../src/config/KnownVariables.ts"

describe("editDistance", () => {
  const cases: ReadonlyArray<readonly [string, string, number]> = [
    ["MEMORY", "MEMORY", 0],
    ["", "", 0],
    ["", "CPU", 3],
    ["CPU", "CPUS", 1],
    ["CPUS", "CPU", 1],
    ["MEMORX", "MEMORY", 1],
    ["MEMROY", "MEMORY", 1],
    ["MODLE", "MODEL", 1],
    ["kitten", "sitting", 3],
    ["ABC", "CA", 3]
  ]
  for (const [a, b, distance] of cases) {
    test(`${JSON.stringify(a)} to ${JSON.stringify(b)} is ${distance}`, () => {
      expect(editDistance(a, b, 5)).toBe(distance)
      expect(editDistance(b, a, 5)).toBe(distance)
    })
  }

  test("stops at the limit", () => {
    expect(editDistance("MEMORY", "GRAPHICS", 2)).toBe(3)
    expect(editDistance("A", "ABCDEFG", 2)).toBe(3)
    expect(editDistance("kitten", "sitting", 2)).toBe(3)
    expect(editDistance("kitten", "sitting", 3)).toBe(3)
  })
})

describe("isKnownVariable", () => {
  test("listed and numbered names", () => {
    for (const name of ["MEMORY", "DISK2_SIZE", "DISK6_SIZE", "DEVICE3", "NETWORK2_MTU"]) {
      expect({ name, known: isKnownVariable(name) }).toEqual({ name, known: true })
    }
    expect(isKnownVariable("FILESYSTEM4_ACCESSMODE")).toBe(true)
  })

  test("unknown names", () => {
    for (const name of [
      "MEMROY",
      "DISK7_SIZE",
      "DISK1_SIZE",
      "DEVICE1",
      "NETWORK2_SPEED",
      "memory"
    ]) {
      expect({ name, known: isKnownVariable(name) }).toEqual({ name, known: false })
    }
  })

  test("list has no duplicates", () => {
    expect(knownVariables.length).toBe(new Set(knownVariables).size)
  })
})

describe("typoWarnings", () => {
  const cases: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
    ["MEMROY", ["MEMROY is not a vm-runner variable; did you mean MEMORY?"]],
    ["CPU", ["CPU is not a vm-runner variable; did you mean CPUS?"]],
    ["GUEST_NAM", ["GUEST_NAM is not a vm-runner variable; did you mean GUEST_NAME?"]],
    ["DISK3_SIZ", ["DISK3_SIZ is not a vm-runner variable; did you mean DISK3_SIZE?"]],
    [
      "FILESYSTEM2_SORUCE",
      ["FILESYSTEM2_SORUCE is not a vm-runner variable; did you mean FILESYSTEM2_SOURCE?"]
    ],
    ["VM_MEMORY", ["VM_MEMORY is no longer read; use MEMORY"]],
    ["BOOT_ISO", ["BOOT_ISO is no longer read; use BOOT_FROM"]],
    ["Memory", ["Memory is not read; did you mean MEMORY?"]],
    ["network2_mode", ["network2_mode is not read; did you mean NETWORK2_MODE?"]],
    // Only the number is wrong, and the configuration reports these as problems.
    ["DISK7_SIZE", []],
    ["DEVICE1", []],
    ["MEMORY", []],
    ["KUBERNETES_SERVICE_PORT", []],
    ["DEBIAN_FRONTEND", []],
    ["HOSTNAME", []],
    ["TERM", []],
    ["USER", []]
  ]
  for (const [name, warnings] of cases) {
    test(name, () => {
      expect(typoWarnings({ [name]: "1" })).toEqual([...warnings])
    })
  }
})
