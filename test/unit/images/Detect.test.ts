import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { type Detection, detectFormat, type Sample } from "../../../src/images/Detect.ts"
import { readSample } from "../../../src/images/Files.ts"
import { convertDisk, makeIso, makeRawDisk, makeTar, run } from "./Fixtures.ts"

const sampleOf = (bytes: Uint8Array): Sample => ({
  head: bytes.subarray(0, 64 * 1024),
  tail: bytes.subarray(Math.max(0, bytes.length - 512)),
  size: bytes.length
})

const withBytes = (length: number, patches: ReadonlyArray<[number, ArrayLike<number>]>) => {
  const bytes = new Uint8Array(length)
  for (const [offset, values] of patches) bytes.set(values, offset)
  return bytes
}

const text = (value: string) => new TextEncoder().encode(value)

describe("detectFormat on synthetic headers", () => {
  const cases: ReadonlyArray<[string, Uint8Array, Detection["format"]]> = [
    ["qcow2 v3", withBytes(1024, [[0, [0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]]]), "qcow2"],
    ["qcow v1", withBytes(1024, [[0, [0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 1]]]), "qcow"],
    ["vmdk sparse", withBytes(1024, [[0, text("KDMV")]]), "vmdk"],
    ["vmdk descriptor", text("# Disk DescriptorFile\nversion=1\n"), "vmdk"],
    ["vhdx", withBytes(1024, [[0, text("vhdxfile")]]), "vhdx"],
    ["vdi", withBytes(1024, [[0x40, [0x7f, 0x10, 0xda, 0xbe]]]), "vdi"],
    ["fixed vhd footer", withBytes(4096, [[4096 - 512, text("conectix")]]), "vhd"],
    ["gzip", withBytes(64, [[0, [0x1f, 0x8b, 0x08]]]), "gzip"],
    ["xz", withBytes(64, [[0, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]]]), "xz"],
    ["bzip2", withBytes(64, [[0, [...text("BZh9"), 0x31, 0x41, 0x59, 0x26, 0x53, 0x59]]]), "bzip2"],
    ["zstd", withBytes(64, [[0, [0x28, 0xb5, 0x2f, 0xfd]]]), "zstd"],
    ["7z", withBytes(64, [[0, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]]]), "7z"],
    ["zip", withBytes(64, [[0, text("PK\x03\x04")]]), "zip"],
    ["ISO 9660", withBytes(40 * 1024, [[0x8001, text("CD001")]]), "iso"],
    ["UDF only", withBytes(40 * 1024, [[0x8001, text("BEA01")]]), "iso"],
    ["HTML page", text("<!DOCTYPE html><html><body>login</body></html>"), "html"],
    ["empty file", new Uint8Array(), "empty"],
    ["GPT disk", withBytes(8192, [[512, text("EFI PART")]]), "raw"],
    ["unknown bytes", withBytes(4096, [[0, [1, 2, 3]]]), "raw"]
  ]
  for (const [name, bytes, format] of cases) {
    test(name, () => {
      expect(detectFormat(sampleOf(bytes)).format).toBe(format)
    })
  }

  test("hybrid ISO with an MBR is an ISO", () => {
    const bytes = withBytes(40 * 1024, [
      [510, [0x55, 0xaa]],
      [0x8001, text("CD001")]
    ])
    expect(detectFormat(sampleOf(bytes)).format).toBe("iso")
  })

  test("raw disk reports its partition table", () => {
    const bytes = withBytes(4096, [[510, [0x55, 0xaa]]])
    expect(detectFormat(sampleOf(bytes)).partitionTable).toBe("mbr")
  })

  test("unknown bytes have no partition table", () => {
    expect(detectFormat(sampleOf(withBytes(4096, []))).partitionTable).toBeUndefined()
  })
})

describe("detectFormat on files made by the tools", () => {
  let directory: string
  let raw: string

  beforeAll(() => {
    directory = mkdtempSync(join(tmpdir(), "vm-runner-detect-"))
    raw = makeRawDisk(join(directory, "disk.raw"))
  })

  afterAll(() => rmSync(directory, { recursive: true, force: true }))

  const detect = (path: string) => detectFormat(Effect.runSync(readSample(path))).format

  const formats: ReadonlyArray<[string, string, Detection["format"]]> = [
    ["qcow2", "qcow2", "qcow2"],
    ["vmdk", "vmdk", "vmdk"],
    ["vpc", "vhd", "vhd"],
    ["vhdx", "vhdx", "vhdx"],
    ["vdi", "vdi", "vdi"]
  ]
  for (const [qemuFormat, extension, expected] of formats) {
    test(`${qemuFormat} from qemu-img`, () => {
      const path = convertDisk(raw, qemuFormat, join(directory, `disk.${extension}`))
      expect(detect(path)).toBe(expected)
    })
  }

  test("fixed-size vhd from qemu-img", () => {
    const path = convertDisk(raw, "vpc", join(directory, "fixed.vhd"), ["-o", "subformat=fixed"])
    expect(detect(path)).toBe("vhd")
  })

  test("raw disk with an MBR", () => {
    expect(detect(raw)).toBe("raw")
  })

  test("ISO from genisoimage", () => {
    expect(detect(makeIso(join(directory, "plain.iso")))).toBe("iso")
  })

  test("hybrid ISO from genisoimage", () => {
    expect(detect(makeIso(join(directory, "hybrid.bin"), true))).toBe("iso")
  })

  test("compressors and archivers", () => {
    run(["xz", "-k", "-T1", raw])
    run(["gzip", "-k", raw])
    run(["bzip2", "-k", raw])
    run(["zstd", "-q", "-k", raw])
    run(["tar", "-cf", join(directory, "disk.tar"), "-C", directory, "disk.raw"])
    run(["zip", "-q", "-j", join(directory, "disk.zip"), raw])
    run(["7z", "a", "-bd", join(directory, "disk.7z"), raw])
    expect(detect(`${raw}.xz`)).toBe("xz")
    expect(detect(`${raw}.gz`)).toBe("gzip")
    expect(detect(`${raw}.bz2`)).toBe("bzip2")
    expect(detect(`${raw}.zst`)).toBe("zstd")
    expect(detect(join(directory, "disk.tar"))).toBe("tar")
    expect(detect(join(directory, "disk.zip"))).toBe("zip")
    expect(detect(join(directory, "disk.7z"))).toBe("7z")
  })

  test("tar with an .ovf first is an OVA", () => {
    const path = makeTar(join(directory, "appliance.ova"), [
      { name: "appliance.ovf", data: text("<Envelope/>") },
      {
        name: "disk1.vmdk",
        data: readFileSync(convertDisk(raw, "vmdk", join(directory, "ova.vmdk")))
      }
    ])
    expect(detect(path)).toBe("ova")
  })

  test("raw disk renamed .iso is raw", () => {
    const path = join(directory, "renamed.iso")
    writeFileSync(path, readFileSync(raw))
    expect(detect(path)).toBe("raw")
  })
})
