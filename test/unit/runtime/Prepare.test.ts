import { describe, expect, test } from "bun:test"
import { createHash } from "node:crypto"
import { makeLayout } from "../../../src/domain/Layout.ts"
import { derivedUuid, libvirtMajorVersion } from "../../../src/runtime/Prepare.ts"

const layout = makeLayout("/var/lib/vm-runner", "testvm")
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

describe("derivedUuid", () => {
  test("canonical text form", () => {
    expect(derivedUuid(layout)).toMatch(uuidPattern)
  })

  test("stable for one VM directory", () => {
    expect(derivedUuid(makeLayout("/var/lib/vm-runner", "testvm"))).toBe(derivedUuid(layout))
  })

  test("differs by VM name", () => {
    expect(derivedUuid(makeLayout("/var/lib/vm-runner", "other"))).not.toBe(derivedUuid(layout))
  })

  test("differs by data directory", () => {
    expect(derivedUuid(makeLayout("/data", "testvm"))).not.toBe(derivedUuid(layout))
  })

  test("version 8", () => {
    expect(derivedUuid(layout)[14]).toBe("8")
  })

  test("RFC 9562 variant bits", () => {
    for (const name of ["a", "b", "c", "d", "e", "f", "g", "h", "testvm", "web-01"]) {
      const variant = Number.parseInt(derivedUuid(makeLayout("/data", name))[19] ?? "", 16)
      expect(variant & 0b1100).toBe(0b1000)
    }
  })

  test("other bits come from SHA-256 of the directory", () => {
    const digest = createHash("sha256").update(`vm-runner:${layout.vmDir}`).digest("hex")
    const hex = derivedUuid(layout).replaceAll("-", "")
    const masked = (text: string) =>
      `${text.slice(0, 12)}_${text.slice(13, 16)}${Number.parseInt(text[16] ?? "", 16) & 0b11}${text.slice(17, 32)}`
    expect(masked(hex)).toBe(masked(digest))
  })
})

describe("libvirtMajorVersion", () => {
  test("libvirt 9.0", () => {
    const text =
      "Compiled against library: libvirt 9.0.0\nUsing library: libvirt 9.0.0\n" +
      "Using API: QEMU 9.0.0\nRunning hypervisor: QEMU 7.2.22\n"
    expect(libvirtMajorVersion(text)).toBe(9)
  })

  test("library version wins over the compiled one", () => {
    const text = "Compiled against library: libvirt 10.10.0\nUsing library: libvirt 11.3.0\n"
    expect(libvirtMajorVersion(text)).toBe(11)
  })

  test("empty output is 0", () => {
    expect(libvirtMajorVersion("")).toBe(0)
  })

  test("error text is 0", () => {
    expect(libvirtMajorVersion("error: failed to connect to the hypervisor")).toBe(0)
  })
})
