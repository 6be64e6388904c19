import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { createHash } from "node:crypto"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { join } from "node:path"
import { BunServices } from "@effect/platform-bun"
import { Effect, Exit, Layer } from "effect"
import { type ByteSize, GiB, MiB } from "../../../src/domain/ByteSize.ts"
import { ExitCode } from "../../../src/domain/ExitCode.ts"
import { Exec } from "../../../src/process/Exec.ts"
import { DiskError, QemuImg } from "../../../src/storage/QemuImg.ts"

/** The real qemu-img through Exec, composed as src/cli/RunCommand.ts does. */
const layer = QemuImg.layer.pipe(Layer.provide(Exec.layer), Layer.provide(BunServices.layer))

const runQemuImg = <A, E>(use: (qemuImg: QemuImg["Service"]) => Effect.Effect<A, E>) =>
  Effect.runPromise(QemuImg.use(use).pipe(Effect.provide(layer)))

const runQemuImgExit = <A, E>(use: (qemuImg: QemuImg["Service"]) => Effect.Effect<A, E>) =>
  Effect.runPromiseExit(QemuImg.use(use).pipe(Effect.provide(layer)))

const run = (argv: ReadonlyArray<string>): string => {
  const result = Bun.spawnSync([...argv])
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${result.stderr.toString()}`)
  return result.stdout.toString()
}

/** `qemu-img info` as qemu-img prints it, for fields ImageInfo leaves out. */
const rawInfo = (path: string): Record<string, unknown> =>
  JSON.parse(run(["qemu-img", "info", "-U", "--output=json", path]))

/** Returns the typed failure of an effect that was expected to fail. */
const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const reason = exit.cause.reasons.find((entry) => entry._tag === "Fail")
  if (reason === undefined || reason._tag !== "Fail") throw new Error(String(exit.cause))
  return reason.error
}

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex")

const gib = (count: number) => (count * GiB) as ByteSize

let directory: string
let base: string
let counter = 0
const nextPath = (name: string) => join(directory, `${counter++}-${name}`)

beforeAll(() => {
  directory = mkdtempSync(join("/var/tmp", "vm-runner-qemuimg-"))
  base = join(directory, "base.qcow2")
  run(["qemu-img", "create", "-q", "-f", "qcow2", base, "20G"])
  // Data at the start and the end, so reads through an overlay have something to find.
  run(["qemu-io", "-c", "write -P 0xab 0 1M", "-c", "write -P 0xcd 19G 1M", base])
})

afterAll(() => rmSync(directory, { recursive: true, force: true }))

describe("QemuImg.createOverlay", () => {
  test("records the backing file", async () => {
    const path = nextPath("overlay.qcow2")
    await runQemuImg((qemuImg) => qemuImg.createOverlay(path, base, "qcow2", undefined))
    const info = await runQemuImg((qemuImg) => qemuImg.info(path))
    expect(info.format).toBe("qcow2")
    expect(info.backingFile).toBe(base)
  })

  test("records the backing format", async () => {
    const path = nextPath("overlay.qcow2")
    await runQemuImg((qemuImg) => qemuImg.createOverlay(path, base, "qcow2", undefined))
    expect(rawInfo(path)["backing-filename-format"]).toBe("qcow2")
  })

  test("turns on lazy refcounts", async () => {
    const path = nextPath("overlay.qcow2")
    await runQemuImg((qemuImg) => qemuImg.createOverlay(path, base, "qcow2", undefined))
    const specific = rawInfo(path)["format-specific"] as { data: Record<string, unknown> }
    expect(specific.data["lazy-refcounts"]).toBe(true)
  })

  test("takes the base's size without a size", async () => {
    const path = nextPath("overlay.qcow2")
    await runQemuImg((qemuImg) => qemuImg.createOverlay(path, base, "qcow2", undefined))
    const info = await runQemuImg((qemuImg) => qemuImg.info(path))
    expect(info.virtualSize).toBe(20 * GiB)
  })

  test("grows to the requested size", async () => {
    const path = nextPath("overlay.qcow2")
    await runQemuImg((qemuImg) => qemuImg.createOverlay(path, base, "qcow2", gib(40)))
    const info = await runQemuImg((qemuImg) => qemuImg.info(path))
    expect(info.virtualSize).toBe(40 * GiB)
  })

  test("reads the base's data", async () => {
    const path = nextPath("overlay.qcow2")
    await runQemuImg((qemuImg) => qemuImg.createOverlay(path, base, "qcow2", gib(40)))
    // qemu-io exits 1 when the pattern does not match, which makes `run` throw.
    const output = run(["qemu-io", "-r", "-c", "read -P 0xcd 19G 1M", path])
    expect(output).toContain("read 1048576/1048576 bytes at offset 20401094656")
  })

  test("takes well under a second on a 20 GiB base", async () => {
    const path = nextPath("overlay.qcow2")
    const started = performance.now()
    await runQemuImg((qemuImg) => qemuImg.createOverlay(path, base, "qcow2", gib(30)))
    const seconds = (performance.now() - started) / 1000
    expect(seconds).toBeLessThan(0.5)
  })

  test("never modifies the base", async () => {
    const before = sha256(base)
    const path = nextPath("overlay.qcow2")
    await runQemuImg((qemuImg) => qemuImg.createOverlay(path, base, "qcow2", gib(40)))
    run(["qemu-io", "-c", "write -P 0x11 0 4M", "-c", "write -P 0x22 30G 1M", path])
    await runQemuImg((qemuImg) => qemuImg.grow(path, gib(50)))
    expect(sha256(base)).toBe(before)
  })

  test("raw base by its format", async () => {
    const raw = nextPath("base.raw")
    run(["qemu-img", "create", "-q", "-f", "raw", raw, "64M"])
    const path = nextPath("overlay.qcow2")
    await runQemuImg((qemuImg) => qemuImg.createOverlay(path, raw, "raw", undefined))
    expect(rawInfo(path)["backing-filename-format"]).toBe("raw")
  })

  test("missing base fails with DiskError", async () => {
    const path = nextPath("overlay.qcow2")
    const exit = await runQemuImgExit((qemuImg) =>
      qemuImg.createOverlay(path, join(directory, "missing.qcow2"), "qcow2", undefined)
    )
    const error = failureOf(exit)
    expect(error).toBeInstanceOf(DiskError)
    expect(error.operation).toBe("create the overlay")
    expect(error.path).toBe(path)
  })
})

describe("QemuImg.createBlank", () => {
  test("sparse without preallocation", async () => {
    const path = nextPath("blank.qcow2")
    await runQemuImg((qemuImg) => qemuImg.createBlank(path, (256 * MiB) as ByteSize, false))
    const info = await runQemuImg((qemuImg) => qemuImg.info(path))
    expect(info.format).toBe("qcow2")
    expect(info.virtualSize).toBe(256 * MiB)
    expect(info.backingFile).toBeUndefined()
    expect(info.actualSize).toBeLessThan(4 * MiB)
  })

  test("allocated with preallocation", async () => {
    const path = nextPath("blank.qcow2")
    await runQemuImg((qemuImg) => qemuImg.createBlank(path, (256 * MiB) as ByteSize, true))
    const info = await runQemuImg((qemuImg) => qemuImg.info(path))
    expect(info.virtualSize).toBe(256 * MiB)
    expect(info.actualSize).toBeGreaterThanOrEqual(256 * MiB)
  })

  test("preallocated image is consistent", async () => {
    const path = nextPath("blank.qcow2")
    await runQemuImg((qemuImg) => qemuImg.createBlank(path, (64 * MiB) as ByteSize, true))
    expect(run(["qemu-img", "check", path])).toContain("No errors")
  })
})

describe("QemuImg.grow", () => {
  test("grows a blank disk", async () => {
    const path = nextPath("blank.qcow2")
    await runQemuImg((qemuImg) => qemuImg.createBlank(path, gib(1), false))
    await runQemuImg((qemuImg) => qemuImg.grow(path, gib(3)))
    const info = await runQemuImg((qemuImg) => qemuImg.info(path))
    expect(info.virtualSize).toBe(3 * GiB)
  })
})

describe("QemuImg.check", () => {
  test("consistent image passes", async () => {
    const path = nextPath("blank.qcow2")
    await runQemuImg((qemuImg) => qemuImg.createBlank(path, gib(1), false))
    expect(await runQemuImg((qemuImg) => qemuImg.check(path))).toBe(true)
  })

  test("file that is not an image fails", async () => {
    const path = nextPath("not-an-image.qcow2")
    await Bun.write(path, "QFI\xfb but not really")
    expect(await runQemuImg((qemuImg) => qemuImg.check(path))).toBe(false)
  })
})

describe("QemuImg.info", () => {
  test("missing file fails with DiskError", async () => {
    const path = join(directory, "missing.qcow2")
    const exit = await runQemuImgExit((qemuImg) => qemuImg.info(path))
    const error = failureOf(exit)
    expect(error).toBeInstanceOf(DiskError)
    expect(error.path).toBe(path)
    expect(error.operation).toBe("read")
    expect(error.exitCode).toBe(ExitCode.Image)
    expect(error.message).toStartWith(`cannot read ${path}: `)
    expect(error.detail).toContain("No such file or directory")
    expect(existsSync(path)).toBe(false)
  })
})
