import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { listTarMembers, parsePaxRecords, unsafeMemberPath } from "../../../src/images/Tar.ts"
import { makeTar, run } from "./Fixtures.ts"

let directory: string

beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), "vm-runner-tar-"))
})

afterAll(() => rmSync(directory, { recursive: true, force: true }))

const list = (path: string) => {
  const bytes = new Uint8Array(readFileSync(path))
  return listTarMembers((offset, length) => bytes.subarray(offset, offset + length), bytes.length)
}

describe("listTarMembers", () => {
  const longName = `${"d".repeat(60)}/${"e".repeat(60)}/${"f".repeat(80)}.raw`

  const makeSource = () => {
    const source = join(directory, "source")
    mkdirSync(join(source, longName, ".."), { recursive: true })
    writeFileSync(join(source, longName), "x".repeat(1000))
    writeFileSync(join(source, "small"), "abc")
    symlinkSync("small", join(source, "link"))
    return source
  }

  test("GNU format with long names and links", () => {
    const source = makeSource()
    const archive = join(directory, "gnu.tar")
    run(["tar", "--format=gnu", "-cf", archive, "-C", source, "."])
    const members = list(archive)
    const byName = new Map(members.map((member) => [member.name, member]))
    expect(byName.get(`./${longName}`)?.size).toBe(1000)
    expect(byName.get("./small")?.type).toBe("file")
    expect(byName.get("./link")?.type).toBe("symlink")
    expect(byName.get("./link")?.linkName).toBe("small")
    const names = run(["tar", "-tf", archive]).trim().split("\n")
    expect(members.map((member) => member.name).sort()).toEqual(names.sort())
  })

  test("pax format with long names", () => {
    const archive = join(directory, "pax.tar")
    run(["tar", "--format=pax", "-cf", archive, "-C", join(directory, "source"), longName])
    expect(list(archive).map((member) => member.name)).toEqual([longName])
  })

  test("sparse member reports its full size", () => {
    const sparse = join(directory, "sparse.raw")
    run(["truncate", "-s", "3M", sparse])
    writeFileSync(join(directory, "tail"), "end")
    const archive = join(directory, "sparse.tar")
    run(["tar", "--sparse", "--format=pax", "-cf", archive, "-C", directory, "sparse.raw"])
    const [member] = list(archive)
    expect(member?.name).toBe("sparse.raw")
    expect(member?.size).toBe(3 * 1024 * 1024)
  })

  test("hand-made ustar", () => {
    const archive = makeTar(join(directory, "hand.tar"), [
      { name: "dir/", type: "5" },
      { name: "dir/a", data: new Uint8Array(700) }
    ])
    expect(list(archive)).toEqual([
      { name: "dir/", type: "directory", size: 0, linkName: "" },
      { name: "dir/a", type: "file", size: 700, linkName: "" }
    ])
  })

  test("damaged header throws", () => {
    const bytes = new Uint8Array(readFileSync(join(directory, "hand.tar")))
    bytes[0] = 0x41
    expect(() =>
      listTarMembers((offset, length) => bytes.subarray(offset, offset + length), bytes.length)
    ).toThrow("checksum mismatch")
  })
})

describe("unsafeMemberPath", () => {
  const cases: ReadonlyArray<[string, string | undefined]> = [
    ["disk.raw", undefined],
    ["./a/b.vmdk", undefined],
    ["a/..b/c", undefined],
    ["../escape", "contains a '..' component"],
    ["a/../../escape", "contains a '..' component"],
    ["a\\..\\escape", "contains a '..' component"],
    ["/etc/passwd", "is an absolute path"],
    ["C:/x", "starts with a drive letter"]
  ]
  for (const [name, reason] of cases) {
    test(JSON.stringify(name), () => {
      expect(unsafeMemberPath(name)).toBe(reason)
    })
  }
})

describe("parsePaxRecords", () => {
  test("reads length-prefixed records", () => {
    const data = new TextEncoder().encode("16 path=a/b.raw\n21 GNU.sparse.size=9\n")
    const records = parsePaxRecords(data)
    expect(records.get("path")).toBe("a/b.raw")
    expect(records.get("GNU.sparse.size")).toBe("9")
  })
})
