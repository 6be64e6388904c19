import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { BunServices } from "@effect/platform-bun"
import { Effect, Exit, Layer } from "effect"
import { candidateRank, parseSevenZipListing, unpackImage } from "../../../src/images/Unpack.ts"
import { Exec } from "../../../src/process/Exec.ts"
import { convertDisk, makeIso, makeRawDisk, makeTar, run } from "./Fixtures.ts"
import { randomBytes } from "./TestServer.ts"

const layer = Exec.layer.pipe(Layer.provide(BunServices.layer))

const unpack = (source: string, workDirectory: string) =>
  Effect.runPromise(unpackImage(source, workDirectory).pipe(Effect.provide(layer)))

const unpackExit = (source: string, workDirectory: string) =>
  Effect.runPromiseExit(unpackImage(source, workDirectory).pipe(Effect.provide(layer)))

const failureMessage = (exit: Exit.Exit<unknown, { readonly message: string }>): string => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const reason = exit.cause.reasons.find((entry) => entry._tag === "Fail")
  if (reason === undefined || reason._tag !== "Fail") throw new Error(String(exit.cause))
  return reason.error.message
}

let directory: string
let raw: string
let qcow2: string
let counter = 0

const work = () => join(directory, `work-${counter++}`)

beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), "vm-runner-unpack-"))
  raw = makeRawDisk(join(directory, "src", "disk.raw"))
  qcow2 = convertDisk(raw, "qcow2", join(directory, "src", "disk.qcow2"))
})

afterAll(() => rmSync(directory, { recursive: true, force: true }))

const sameBytes = (a: string, b: string) => readFileSync(a).equals(readFileSync(b))

describe("unpackImage", () => {
  test("xz layer", async () => {
    run(["xz", "-k", "-T1", qcow2])
    const result = await unpack(`${qcow2}.xz`, work())
    expect(result.layers).toEqual(["xz"])
    expect(result.detection.format).toBe("qcow2")
    expect(sameBytes(result.path, qcow2)).toBe(true)
    expect(existsSync(`${qcow2}.xz`)).toBe(true)
  })

  test("gzip, bzip2 and zstd layers", async () => {
    run(["gzip", "-k", raw])
    run(["bzip2", "-k", raw])
    run(["zstd", "-q", "-k", raw])
    for (const [suffix, layer] of [
      [".gz", "gzip"],
      [".bz2", "bzip2"],
      [".zst", "zstd"]
    ] as const) {
      const result = await unpack(`${raw}${suffix}`, work())
      expect(result.layers).toEqual([layer])
      expect(result.detection.format).toBe("raw")
      expect(sameBytes(result.path, raw)).toBe(true)
    }
  })

  test("tar.xz in two layers", async () => {
    const archive = join(directory, "src", "disk.tar")
    run(["tar", "-cf", archive, "-C", join(directory, "src"), "disk.raw"])
    run(["xz", "-k", "-T1", archive])
    const workDirectory = work()
    const result = await unpack(`${archive}.xz`, workDirectory)
    expect(result.layers).toEqual(["xz", "tar"])
    expect(sameBytes(result.path, raw)).toBe(true)
    expect(existsSync(join(workDirectory, "layer0"))).toBe(false)
  })

  test("tar.zst in two layers", async () => {
    const archive = join(directory, "src", "zst.tar")
    run(["tar", "-cf", archive, "-C", join(directory, "src"), "disk.qcow2"])
    run(["zstd", "-q", "-k", archive])
    const result = await unpack(`${archive}.zst`, work())
    expect(result.layers).toEqual(["zstd", "tar"])
    expect(result.detection.format).toBe("qcow2")
  })

  test("zip", async () => {
    const archive = join(directory, "src", "disk.zip")
    run(["zip", "-q", "-j", archive, qcow2])
    const result = await unpack(archive, work())
    expect(result.layers).toEqual(["zip"])
    expect(sameBytes(result.path, qcow2)).toBe(true)
  })

  test("7z", async () => {
    const archive = join(directory, "src", "disk.7z")
    run(["7z", "a", "-bd", archive, raw])
    const result = await unpack(archive, work())
    expect(result.layers).toEqual(["7z"])
    expect(sameBytes(result.path, raw)).toBe(true)
  })

  test("OVA picks the vmdk", async () => {
    const vmdk = convertDisk(raw, "vmdk", join(directory, "src", "appliance-disk1.vmdk"), [
      "-o",
      "subformat=streamOptimized"
    ])
    const ova = makeTar(join(directory, "src", "appliance.ova"), [
      { name: "appliance.ovf", data: new TextEncoder().encode("<Envelope/>") },
      { name: "appliance-disk1.vmdk", data: readFileSync(vmdk) },
      { name: "appliance.mf", data: new TextEncoder().encode("SHA256(x)= 00\n") }
    ])
    const result = await unpack(ova, work())
    expect(result.layers).toEqual(["ova"])
    expect(result.detection.format).toBe("vmdk")
  })

  test("ISO inside gzip", async () => {
    const iso = makeIso(join(directory, "src", "installer.iso"))
    run(["gzip", "-k", iso])
    const result = await unpack(`${iso}.gz`, work())
    expect(result.detection.format).toBe("iso")
  })

  test("image found by type, not size", async () => {
    const bigNoise = randomBytes(3 * 1024 * 1024 + 7, 21)
    const bigSectors = new Uint8Array(4 * 1024 * 1024)
    bigSectors.set(randomBytes(1024, 22), 4096)
    const archive = makeTar(join(directory, "src", "mixed.tar"), [
      { name: "notes.bin", data: bigNoise },
      { name: "blob.img", data: bigSectors },
      { name: "disk.qcow2", data: readFileSync(qcow2) }
    ])
    const result = await unpack(archive, work())
    expect(result.path.endsWith("disk.qcow2")).toBe(true)
  })

  test("tar with ../ entries is rejected", async () => {
    const target = join(directory, "target")
    mkdirSync(target)
    const archive = makeTar(join(directory, "src", "evil.tar"), [
      { name: "disk.raw", data: readFileSync(raw) },
      { name: "../escaped.txt", data: new TextEncoder().encode("owned") }
    ])
    const exit = await unpackExit(archive, join(target, "work"))
    expect(failureMessage(exit)).toContain(`member "../escaped.txt" contains a '..' component`)
    expect(existsSync(join(target, "escaped.txt"))).toBe(false)
    expect(existsSync(join(directory, "escaped.txt"))).toBe(false)
    expect(existsSync(join(target, "work", "layer0"))).toBe(false)
  })

  test("tar with an absolute path is rejected", async () => {
    const archive = makeTar(join(directory, "src", "absolute.tar"), [
      { name: "/tmp/vm-runner-escaped", data: new Uint8Array(10) }
    ])
    const exit = await unpackExit(archive, work())
    expect(failureMessage(exit)).toContain("is an absolute path")
    expect(existsSync("/tmp/vm-runner-escaped")).toBe(false)
  })

  test("tar symlinks are not created", async () => {
    const archive = makeTar(join(directory, "src", "links.tar"), [
      { name: "escape", type: "2", linkName: "/etc" },
      { name: "disk.qcow2", data: readFileSync(qcow2) }
    ])
    const workDirectory = work()
    const result = await unpack(archive, workDirectory)
    expect(result.detection.format).toBe("qcow2")
    expect(readdirSync(join(workDirectory, "layer0"))).toEqual(["disk.qcow2"])
  })

  test("zip with a symlink is rejected", async () => {
    const source = join(directory, "zip-link")
    mkdirSync(source)
    run(["ln", "-s", "/etc", join(source, "escape")])
    const archive = join(directory, "src", "link.zip")
    run(["zip", "-q", "--symlinks", "-r", archive, "escape"], source)
    const exit = await unpackExit(archive, work())
    expect(failureMessage(exit)).toContain("is a symbolic link")
  })

  test("archive without an image", async () => {
    const archive = makeTar(join(directory, "src", "docs.tar"), [
      { name: "README", data: new TextEncoder().encode("hello") }
    ])
    const exit = await unpackExit(archive, work())
    expect(failureMessage(exit)).toContain("no disk image or ISO among its files (README)")
  })
})

describe("parseSevenZipListing", () => {
  test("files, folders and links", () => {
    const listing = [
      "Path = disk.raw\nFolder = -\nSize = 2097152\nAttributes = A_ -rw-r--r--",
      "Path = dir\nFolder = +\nSize = 0\nAttributes = D_ drwxr-xr-x",
      "Path = link\nFolder = -\nSize = 4\nAttributes =  lrwxrwxrwx"
    ].join("\n\n")
    expect(parseSevenZipListing(listing)).toEqual([
      { name: "disk.raw", directory: false, link: false, size: 2097152 },
      { name: "dir", directory: true, link: false, size: 0 },
      { name: "link", directory: false, link: true, size: 4 }
    ])
  })
})

describe("candidateRank", () => {
  test("orders header formats before raw and ISO", () => {
    const mib = 1024 * 1024
    expect(candidateRank({ format: "vmdk", evidence: "" }, 10)).toBe(0)
    expect(candidateRank({ format: "raw", partitionTable: "gpt", evidence: "" }, mib)).toBe(1)
    expect(candidateRank({ format: "iso", evidence: "" }, mib)).toBe(2)
    expect(candidateRank({ format: "raw", evidence: "" }, mib)).toBe(4)
    expect(candidateRank({ format: "raw", evidence: "" }, mib + 1)).toBeUndefined()
    expect(candidateRank({ format: "html", evidence: "" }, mib)).toBeUndefined()
  })
})
