import { describe, expect, test } from "bun:test"
import { deriveMacAddress, parseMacAddress } from "../../../src/domain/MacAddress.ts"

describe("deriveMacAddress", () => {
  test("reference values", () => {
    expect(deriveMacAddress("ubuntu-2404", 1) as string).toBe("52:54:00:b2:25:3c")
    expect(deriveMacAddress("demo", 1) as string).toBe("52:54:00:2a:13:c6")
    expect(deriveMacAddress("demo", 2) as string).toBe("52:54:00:ae:2e:09")
    expect(deriveMacAddress("demo", 3) as string).toBe("52:54:00:2e:13:ce")
  })

  test("stable across calls", () => {
    expect(deriveMacAddress("devbox", 4)).toBe(deriveMacAddress("devbox", 4))
  })

  test("differs per VM and per NIC", () => {
    const addresses = new Set<string>()
    for (const name of ["a", "b", "devbox", "devbox2"]) {
      for (const nic of [1, 2, 3, 4]) addresses.add(deriveMacAddress(name, nic))
    }
    expect(addresses.size).toBe(16)
  })

  test("QEMU prefix and a valid unicast address", () => {
    for (const nic of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const mac = deriveMacAddress("prefix-check", nic)
      expect(mac).toStartWith("52:54:00:")
      expect(parseMacAddress(mac)).toBe(mac)
    }
  })
})

describe("parseMacAddress", () => {
  test("lower-cases and trims", () => {
    expect(parseMacAddress(" 52:54:00:AB:cd:EF ") as string | undefined).toBe("52:54:00:ab:cd:ef")
  })

  test("accepts a locally administered address", () => {
    expect(parseMacAddress("02:00:00:00:00:01") as string | undefined).toBe("02:00:00:00:00:01")
  })

  for (const text of [
    "",
    "52:54:00:12:34",
    "52:54:00:12:34:56:78",
    "52-54-00-12-34-56",
    "5254.0012.3456",
    "52:54:00:12:34:5g",
    "01:00:5e:00:00:01",
    "ff:ff:ff:ff:ff:ff",
    "33:33:00:00:00:01"
  ]) {
    test(`rejects ${JSON.stringify(text)}`, () => {
      expect(parseMacAddress(text)).toBeUndefined()
    })
  }
})
