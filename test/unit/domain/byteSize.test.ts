import { describe, expect, test } from "bun:test"
import {
  byteSize,
  formatByteSize,
  GiB,
  humanByteSize,
  KiB,
  MiB,
  parseByteSize,
  TiB
} from "../../../src/domain/ByteSize.ts"

describe("parseByteSize", () => {
  const accepted: ReadonlyArray<readonly [string, number]> = [
    ["20G", 20 * GiB],
    ["20g", 20 * GiB],
    ["20GiB", 20 * GiB],
    ["20gib", 20 * GiB],
    ["20GB", 20 * GiB],
    ["20 G", 20 * GiB],
    [" 20G ", 20 * GiB],
    ["512M", 512 * MiB],
    ["512MiB", 512 * MiB],
    ["64K", 64 * KiB],
    ["1T", TiB],
    ["1TB", TiB],
    ["1073741824", GiB],
    ["512B", 512],
    ["1", 1],
    ["007M", 7 * MiB]
  ]
  for (const [text, bytes] of accepted) {
    test(`accepts ${JSON.stringify(text)}`, () => {
      expect(parseByteSize(text)).toBe(byteSize(bytes))
    })
  }

  const rejected = [
    "",
    "0",
    "0G",
    "-1",
    "-1G",
    "+1G",
    "1.5G",
    ".5G",
    "1,5G",
    "1e9",
    "20Gi",
    "20P",
    "20 GB s",
    "G",
    "twenty",
    "0x10",
    "99999999T"
  ]
  for (const text of rejected) {
    test(`rejects ${JSON.stringify(text)}`, () => {
      expect(parseByteSize(text)).toBeUndefined()
    })
  }
})

describe("formatByteSize", () => {
  test("largest whole unit", () => {
    expect(formatByteSize(byteSize(20 * GiB))).toBe("20G")
    expect(formatByteSize(byteSize(2 * TiB))).toBe("2T")
    expect(formatByteSize(byteSize(1536 * MiB))).toBe("1536M")
    expect(formatByteSize(byteSize(3 * KiB))).toBe("3K")
    expect(formatByteSize(byteSize(1000))).toBe("1000")
  })

  test("round trip through parseByteSize", () => {
    for (const bytes of [1, 512, KiB, 1536 * MiB, 20 * GiB, 3 * TiB]) {
      expect(parseByteSize(formatByteSize(byteSize(bytes)))).toBe(byteSize(bytes))
    }
  })
})

describe("humanByteSize", () => {
  test("one decimal in the largest unit", () => {
    expect(humanByteSize(1.5 * GiB)).toBe("1.5 GiB")
    expect(humanByteSize(512 * MiB)).toBe("512.0 MiB")
    expect(humanByteSize(2 * TiB)).toBe("2.0 TiB")
    expect(humanByteSize(2048)).toBe("2.0 KiB")
    expect(humanByteSize(100)).toBe("100 B")
  })
})

test("byteSize floors fractions", () => {
  expect(byteSize(10.9)).toBe(byteSize(10))
})
