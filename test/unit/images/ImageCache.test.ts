import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test"
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { BunServices } from "@effect/platform-bun"
import { Effect, Exit, Layer } from "effect"
import type { BootFrom, Distro, ImageChecksum } from "../../../src/domain/Config.ts"
import { Downloader } from "../../../src/images/Downloader.ts"
import { FileLock } from "../../../src/images/FileLock.ts"
import { ImageCache, type ResolvedImage } from "../../../src/images/ImageCache.ts"
import { Progress } from "../../../src/images/Progress.ts"
import { Exec } from "../../../src/process/Exec.ts"
import { convertDisk, makeIso, makeRawDisk, run } from "./Fixtures.ts"
import { sha256Hex, TestServer } from "./TestServer.ts"

const makeLayer = (dataRoot: string) =>
  ImageCache.layer(dataRoot).pipe(
    Layer.provide(
      Layer.mergeAll(
        Downloader.layerWith({
          stallTimeout: "2 seconds",
          retryBaseDelay: "10 millis",
          retryMaxDelay: "20 millis"
        }),
        FileLock.layer,
        Exec.layer
      )
    ),
    Layer.provide(Layer.mergeAll(Progress.layerSilent, BunServices.layer))
  )

let server: TestServer
let directory: string
let dataRoot: string
let raw: string
let qcow2: string
let qcow2Bytes: Uint8Array

beforeAll(async () => {
  server = await TestServer.start()
  directory = mkdtempSync(join(tmpdir(), "vm-runner-cache-"))
  raw = makeRawDisk(join(directory, "fixtures", "disk.raw"), 31)
  qcow2 = convertDisk(raw, "qcow2", join(directory, "fixtures", "disk.qcow2"))
  qcow2Bytes = new Uint8Array(readFileSync(qcow2))
})

afterAll(async () => {
  await server.stop()
  rmSync(directory, { recursive: true, force: true })
})

let rootCounter = 0
const freshRoot = () => {
  dataRoot = join(directory, `data-${rootCounter++}`)
  return dataRoot
}

afterEach(() => {
  server.requests.length = 0
  server.files.clear()
})

const distro = (path: string, checksum?: ImageChecksum): Distro => ({
  key: "test",
  name: "Test",
  url: server.url(path),
  arch: "x86_64",
  user: "user",
  checksum
})

const catalogue = (root: string, entry: Distro) =>
  Effect.runPromise(
    ImageCache.use((cache) => cache.resolveCatalogueImage(entry, 2)).pipe(
      Effect.provide(makeLayer(root))
    )
  )

const catalogueExit = (root: string, entry: Distro) =>
  Effect.runPromiseExit(
    ImageCache.use((cache) => cache.resolveCatalogueImage(entry, 2)).pipe(
      Effect.provide(makeLayer(root))
    )
  )

const bootSource = (root: string, bootFrom: Exclude<BootFrom, { _tag: "Catalogue" }>) =>
  Effect.runPromise(
    ImageCache.use((cache) => cache.resolveBootSource(bootFrom, 2)).pipe(
      Effect.provide(makeLayer(root))
    )
  )

const bootSourceExit = (root: string, bootFrom: Exclude<BootFrom, { _tag: "Catalogue" }>) =>
  Effect.runPromiseExit(
    ImageCache.use((cache) => cache.resolveBootSource(bootFrom, 2)).pipe(
      Effect.provide(makeLayer(root))
    )
  )

const failureOf = (exit: Exit.Exit<unknown, { _tag: string; message: string }>) => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const reason = exit.cause.reasons.find((entry) => entry._tag === "Fail")
  if (reason === undefined || reason._tag !== "Fail") throw new Error(String(exit.cause))
  return reason.error
}

const pathOf = (image: ResolvedImage): string => {
  if (image._tag === "Blank") throw new Error("expected a file")
  return image.path
}

/** True when the two disks have the same guest-visible content. */
const sameDisk = (a: string, aFormat: string, b: string) =>
  Bun.spawnSync(["qemu-img", "compare", "-q", "-f", aFormat, "-F", "qcow2", a, b]).exitCode === 0

const fileState = (path: string) => {
  const stats = statSync(path)
  return { sha256: sha256Hex(readFileSync(path)), mtimeMs: stats.mtimeMs, mode: stats.mode }
}

describe("ImageCache.resolveCatalogueImage", () => {
  test("downloads, verifies and publishes read-only", async () => {
    server.serve("/noble.img", qcow2Bytes, { etag: '"v1"' })
    const root = freshRoot()
    const entry = distro("/noble.img", {
      _tag: "Digest",
      algorithm: "sha256",
      hex: sha256Hex(qcow2Bytes)
    })
    const image = await catalogue(root, entry)
    expect(image).toMatchObject({
      _tag: "DiskImage",
      format: "qcow2",
      fromCache: false,
      digestChecked: true
    })
    expect(pathOf(image).startsWith(join(root, "base"))).toBe(true)
    expect(sha256Hex(readFileSync(pathOf(image)))).toBe(sha256Hex(qcow2Bytes))
    expect(statSync(pathOf(image)).mode & 0o222).toBe(0)
    expect(
      readdirSync(join(root, "base", "downloads")).filter((name) => !name.endsWith(".lock"))
    ).toEqual([])
  })

  test("revalidates with the ETag and reuses the cache", async () => {
    server.serve("/noble.img", qcow2Bytes, { etag: '"v1"' })
    const root = freshRoot()
    const first = await catalogue(root, distro("/noble.img"))
    const second = await catalogue(root, distro("/noble.img"))
    expect(second).toMatchObject({ fromCache: true, path: pathOf(first) })
    expect(server.requests.map((entry) => entry.status)).toEqual([200, 304])
    expect(server.requests[1]?.headers["if-none-match"]).toBe('"v1"')
  })

  test("changed ETag publishes a new file beside the old", async () => {
    const file = server.serve("/latest.img", qcow2Bytes, { etag: '"v1"' })
    const root = freshRoot()
    const first = await catalogue(root, distro("/latest.img"))
    const before = fileState(pathOf(first))

    const newer = convertDisk(
      makeRawDisk(join(directory, "fixtures", "newer.raw"), 32),
      "qcow2",
      join(directory, "fixtures", "newer.qcow2")
    )
    file.data = new Uint8Array(readFileSync(newer))
    file.etag = '"v2"'
    const second = await catalogue(root, distro("/latest.img"))
    expect(second.fromCache).toBe(false)
    expect(pathOf(second)).not.toBe(pathOf(first))
    expect(sha256Hex(readFileSync(pathOf(second)))).toBe(sha256Hex(file.data))
    expect(fileState(pathOf(first))).toEqual(before)
  })

  test("uses the cache with a warning when the server is down", async () => {
    const offline = await TestServer.start()
    offline.serve("/noble.img", qcow2Bytes, { etag: '"v1"' })
    const root = freshRoot()
    const entry: Distro = { ...distro("/unused"), url: offline.url("/noble.img") }
    const first = await catalogue(root, entry)
    await offline.stop()
    const second = await catalogue(root, entry)
    expect(second).toMatchObject({ fromCache: true, path: pathOf(first) })

    const cold = failureOf(await catalogueExit(freshRoot(), entry))
    expect(cold._tag).toBe("DownloadFailed")
  })

  test("checks a SHA256SUMS file", async () => {
    server.serve("/noble.img", qcow2Bytes)
    server.serve(
      "/SHA256SUMS",
      new TextEncoder().encode(
        `${"0".repeat(64)} *other.img\n${sha256Hex(qcow2Bytes)} *noble.img\n`
      )
    )
    const image = await catalogue(
      freshRoot(),
      distro("/noble.img", { _tag: "SumsFile", url: server.url("/SHA256SUMS") })
    )
    expect(image.digestChecked).toBe(true)
  })

  test("checks a BSD-style CHECKSUM file", async () => {
    server.serve("/Fedora.qcow2", qcow2Bytes)
    server.serve(
      "/CHECKSUM",
      new TextEncoder().encode(
        `# Fedora.qcow2: ${qcow2Bytes.length} bytes\n` +
          `SHA256 (Fedora.qcow2) = ${sha256Hex(qcow2Bytes)}\n`
      )
    )
    const image = await catalogue(
      freshRoot(),
      distro("/Fedora.qcow2", { _tag: "SumsFile", url: server.url("/CHECKSUM") })
    )
    expect(image.digestChecked).toBe(true)
  })

  test("fails when the sums file does not list the image", async () => {
    server.serve("/noble.img", qcow2Bytes)
    server.serve("/SHA256SUMS", new TextEncoder().encode(`${"0".repeat(64)}  other.img\n`))
    const error = failureOf(
      await catalogueExit(
        freshRoot(),
        distro("/noble.img", { _tag: "SumsFile", url: server.url("/SHA256SUMS") })
      )
    )
    expect(error._tag).toBe("ChecksumNotListed")
    expect(error.message).toContain("noble.img")
    expect(server.bodyRequests("/noble.img")).toBe(0)
  })

  test("wrong checksum publishes nothing", async () => {
    server.serve("/noble.img", qcow2Bytes)
    const root = freshRoot()
    const wrong = "f".repeat(64)
    const error = failureOf(
      await catalogueExit(
        root,
        distro("/noble.img", { _tag: "Digest", algorithm: "sha256", hex: wrong })
      )
    )
    expect(error._tag).toBe("ChecksumMismatch")
    expect(error.message).toContain(wrong)
    expect(error.message).toContain(sha256Hex(qcow2Bytes))
    const published = readdirSync(join(root, "base")).filter((name) => name.endsWith(".qcow2"))
    expect(published).toEqual([])
    expect(
      readdirSync(join(root, "base", "downloads")).filter((name) => !name.endsWith(".lock"))
    ).toEqual([])
  })

  test("two concurrent requests fetch once", async () => {
    server.serve("/shared.img", qcow2Bytes, { etag: '"s"', throttle: 256 * 1024 })
    const root = freshRoot()
    const entry = distro("/shared.img")
    const [a, b] = await Promise.all([catalogue(root, entry), catalogue(root, entry)])
    expect(pathOf(a)).toBe(pathOf(b))
    expect(server.requests.length).toBe(1)
    expect([a.fromCache, b.fromCache].sort()).toEqual([false, true])
  })

  test("rejects an HTML page", async () => {
    server.serve("/page.img", new TextEncoder().encode("<!doctype html><title>Sign in</title>"))
    const error = failureOf(await catalogueExit(freshRoot(), distro("/page.img")))
    expect(error.message).toContain("HTML page")
  })

  test("rejects a qcow2 with a backing file", async () => {
    const overlay = join(directory, "fixtures", "overlay.qcow2")
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", qcow2, "-F", "qcow2", overlay])
    server.serve("/overlay.qcow2", new Uint8Array(readFileSync(overlay)))
    const error = failureOf(await catalogueExit(freshRoot(), distro("/overlay.qcow2")))
    expect(error._tag).toBe("UnusableImage")
    expect(error.message).toContain("refers to another file")
  })
})

describe("ImageCache.resolveBootSource", () => {
  test("blank", async () => {
    expect(await bootSource(freshRoot(), { _tag: "Blank" })).toEqual({ _tag: "Blank" })
  })

  test("URL .tar.xz holding a raw disk", async () => {
    const tar = join(directory, "fixtures", "kali.tar")
    run(["tar", "-cf", tar, "-C", join(directory, "fixtures"), "disk.raw"])
    run(["xz", "-k", "-f", "-T1", tar])
    server.serve("/kali.tar.xz", new Uint8Array(readFileSync(`${tar}.xz`)))
    const root = freshRoot()
    const image = await bootSource(root, {
      _tag: "Url",
      url: server.url("/kali.tar.xz"),
      hint: "archive"
    })
    expect(image).toMatchObject({ _tag: "DiskImage", format: "qcow2", fromCache: false })
    expect(sameDisk(raw, "raw", pathOf(image))).toBe(true)
    const leftovers = readdirSync(join(root, "base", "downloads"))
    expect(leftovers.filter((name) => !name.endsWith(".lock"))).toEqual([])
    const again = await bootSource(root, {
      _tag: "Url",
      url: server.url("/kali.tar.xz"),
      hint: "archive"
    })
    expect(again).toMatchObject({ fromCache: true, path: pathOf(image) })
  })

  test("URL ISO", async () => {
    const iso = makeIso(join(directory, "fixtures", "net.iso"))
    server.serve("/net.iso", new Uint8Array(readFileSync(iso)))
    const image = await bootSource(freshRoot(), {
      _tag: "Url",
      url: server.url("/net.iso"),
      hint: "iso"
    })
    expect(image._tag).toBe("Iso")
    expect(pathOf(image).endsWith(".iso")).toBe(true)
  })

  test("local .img that is qcow2 is used in place", async () => {
    const path = join(directory, "fixtures", "ubuntu.img")
    writeFileSync(path, qcow2Bytes)
    const image = await bootSource(freshRoot(), { _tag: "Path", path, hint: "disk" })
    expect(image).toMatchObject({ _tag: "DiskImage", path, format: "qcow2" })
  })

  test("raw disk renamed .iso is a disk", async () => {
    const path = join(directory, "fixtures", "not-really.iso")
    writeFileSync(path, readFileSync(raw))
    const image = await bootSource(freshRoot(), { _tag: "Path", path, hint: "iso" })
    expect(image._tag).toBe("DiskImage")
    expect(sameDisk(raw, "raw", pathOf(image))).toBe(true)
  })

  test("ISO detected by content", async () => {
    const path = makeIso(join(directory, "fixtures", "installer.bin"), true)
    const image = await bootSource(freshRoot(), { _tag: "Path", path, hint: "unknown" })
    expect(image).toMatchObject({ _tag: "Iso", path })
  })

  for (const [qemuFormat, extension] of [
    ["vmdk", "vmdk"],
    ["vpc", "vhd"],
    ["vhdx", "vhdx"],
    ["vdi", "vdi"]
  ] as const) {
    test(`local ${extension} is converted`, async () => {
      const path = convertDisk(raw, qemuFormat, join(directory, "fixtures", `disk.${extension}`))
      const image = await bootSource(freshRoot(), { _tag: "Path", path, hint: "disk" })
      expect(image._tag).toBe("DiskImage")
      expect(sameDisk(raw, "raw", pathOf(image))).toBe(true)
    })
  }

  test("awkward path is converted and left untouched", async () => {
    const folder = join(directory, "my images & \"quotes\" 'ü'")
    mkdirSync(folder, { recursive: true })
    const path = convertDisk(raw, "vmdk", join(folder, "Disk & Co ü.vmdk"))
    chmodSync(path, 0o444)
    const before = fileState(path)
    const root = freshRoot()
    const image = await bootSource(root, { _tag: "Path", path, hint: "disk" })
    expect(sameDisk(raw, "raw", pathOf(image))).toBe(true)
    expect(fileState(path)).toEqual(before)
    expect(readdirSync(folder)).toEqual(["Disk & Co ü.vmdk"])
    const again = await bootSource(root, { _tag: "Path", path, hint: "disk" })
    expect(again).toMatchObject({ fromCache: true, path: pathOf(image) })
  })

  test("concurrent conversions convert once", async () => {
    const path = convertDisk(raw, "vdi", join(directory, "fixtures", "shared.vdi"))
    const root = freshRoot()
    const source = { _tag: "Path", path, hint: "disk" } as const
    const [a, b] = await Promise.all([bootSource(root, source), bootSource(root, source)])
    expect(pathOf(a)).toBe(pathOf(b))
    expect([a, b].map((image) => image._tag !== "Blank" && image.fromCache).sort()).toEqual([
      false,
      true
    ])
  })

  test("local archive is unpacked and kept", async () => {
    const folder = join(directory, "archive & space")
    mkdirSync(folder, { recursive: true })
    run(["zip", "-q", "-j", join(folder, "disk image.zip"), qcow2])
    const path = join(folder, "disk image.zip")
    const before = fileState(path)
    const image = await bootSource(freshRoot(), { _tag: "Path", path, hint: "archive" })
    expect(image._tag).toBe("DiskImage")
    expect(fileState(path)).toEqual(before)
    expect(readdirSync(folder)).toEqual(["disk image.zip"])
  })

  test("empty file is rejected", async () => {
    const path = join(directory, "fixtures", "empty.img")
    writeFileSync(path, "")
    const error = failureOf(await bootSourceExit(freshRoot(), { _tag: "Path", path, hint: "disk" }))
    expect(error.message).toContain("the file is empty")
  })
})
