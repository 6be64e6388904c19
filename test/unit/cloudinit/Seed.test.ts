import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { BunServices } from "@effect/platform-bun"
import { Effect, Exit, Layer } from "effect"
import { renderSeedFiles, Seed, SeedError, type SeedFiles } from "../../../src/cloudinit/Seed.ts"
import { ExitCode } from "../../../src/domain/ExitCode.ts"
import { CommandNotFound, Exec } from "../../../src/process/Exec.ts"
import { makeConfig, makeNic } from "../libvirt/fixtures.ts"

const realExec = Exec.layer.pipe(Layer.provide(BunServices.layer))

/** The real Exec, except that `hidden` commands are reported as not installed. */
const execWithout = (hidden: ReadonlyArray<string>) =>
  Layer.effect(
    Exec,
    Effect.gen(function* () {
      const exec = yield* Exec
      return Exec.of({
        run: (argv, options) => {
          const command = argv[0] ?? ""
          return hidden.includes(command)
            ? Effect.fail(new CommandNotFound({ command, detail: "hidden by the test" }))
            : exec.run(argv, options)
        }
      })
    })
  ).pipe(Layer.provide(realExec))

/** An Exec whose every command exits 1 with `stderr`. */
const failingExec = (stderr: string) =>
  Layer.succeed(
    Exec,
    Exec.of({
      run: () => Effect.succeed({ exitCode: 1, stdout: new Uint8Array(), stderr, text: "" })
    })
  )

const writeSeed = (path: string, files: SeedFiles, exec: Layer.Layer<Exec> = realExec) =>
  Effect.runPromiseExit(
    Seed.use((seed) => seed.write(path, files)).pipe(
      Effect.provide(Seed.layer.pipe(Layer.provide(exec)))
    )
  )

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const reason = exit.cause.reasons.find((entry) => entry._tag === "Fail")
  if (reason === undefined || reason._tag !== "Fail") throw new Error(String(exit.cause))
  return reason.error
}

const expectSuccess = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isFailure(exit)) throw new Error(`seed write failed: ${String(exit.cause)}`)
}

const isoinfo = (args: ReadonlyArray<string>, iso: string): string => {
  const result = Bun.spawnSync(["isoinfo", ...args, "-i", iso])
  if (result.exitCode !== 0) throw new Error(`isoinfo failed: ${result.stderr.toString()}`)
  return result.stdout.toString()
}

const volumeId = (iso: string) => /^Volume id: (.*)$/m.exec(isoinfo(["-d"], iso))?.[1]
const jolietNames = (iso: string) => isoinfo(["-J", "-f"], iso).trim().split("\n").sort()
const rockRidgeNames = (iso: string) => isoinfo(["-R", "-f"], iso).trim().split("\n").sort()
const jolietFile = (iso: string, name: string) => isoinfo(["-J", "-x", `/${name}`], iso)

const instanceId = "6b1c6d4e-2f0a-4c1e-9b7a-3d5e8f9a0b1c"
const twoNicConfig = makeConfig({
  network: { nics: [makeNic({ index: 1 }), makeNic({ index: 2, mode: "bridge", bridge: "br0" })] }
})
const seedFiles = renderSeedFiles(twoNicConfig, instanceId, "Zz09./AbCdEfGhIj")

let directory: string
let counter = 0
const nextDir = () => {
  const dir = join(directory, `vm-${counter++}`)
  mkdirSync(dir)
  return dir
}

beforeAll(() => {
  directory = mkdtempSync(join("/var/tmp", "vm-runner-seed-"))
})

afterAll(() => rmSync(directory, { recursive: true, force: true }))

describe("Seed.write with genisoimage", () => {
  let iso: string

  beforeAll(async () => {
    iso = join(nextDir(), "seed.iso")
    expectSuccess(await writeSeed(iso, seedFiles))
  })

  test("volume label is cidata", () => {
    expect(volumeId(iso)).toBe("cidata")
  })

  test("Joliet names are exact", () => {
    expect(jolietNames(iso)).toEqual(["/meta-data", "/network-config", "/user-data"])
  })

  test("Rock Ridge names are exact", () => {
    expect(rockRidgeNames(iso)).toEqual(["/meta-data", "/network-config", "/user-data"])
  })

  test("user-data reads back unchanged", () => {
    expect(jolietFile(iso, "user-data")).toBe(seedFiles["user-data"])
  })

  test("meta-data reads back unchanged", () => {
    expect(jolietFile(iso, "meta-data")).toBe(seedFiles["meta-data"])
  })

  test("network-config reads back unchanged", () => {
    expect(jolietFile(iso, "network-config")).toBe(seedFiles["network-config"] ?? "")
  })

  test("leaves only the ISO behind", () => {
    expect(readdirSync(join(iso, ".."))).toEqual(["seed.iso"])
  })
})

describe("Seed.write", () => {
  test("without network-config", async () => {
    const iso = join(nextDir(), "seed.iso")
    const files = renderSeedFiles(makeConfig(), instanceId, "Zz09./AbCdEfGhIj")
    expectSuccess(await writeSeed(iso, files))
    expect(jolietNames(iso)).toEqual(["/meta-data", "/user-data"])
  })

  test("replaces an earlier seed", async () => {
    const iso = join(nextDir(), "seed.iso")
    writeFileSync(iso, "an old seed")
    const files = { "meta-data": "instance-id: two\n", "user-data": "#cloud-config\n" }
    expectSuccess(await writeSeed(iso, files))
    expect(jolietFile(iso, "meta-data")).toBe("instance-id: two\n")
  })

  test.skipIf(Bun.which("xorriso") === null)("xorriso when genisoimage is missing", async () => {
    const iso = join(nextDir(), "seed.iso")
    expectSuccess(await writeSeed(iso, seedFiles, execWithout(["genisoimage"])))
    expect(volumeId(iso)).toBe("cidata")
    expect(jolietNames(iso)).toEqual(["/meta-data", "/network-config", "/user-data"])
    expect(jolietFile(iso, "user-data")).toBe(seedFiles["user-data"])
  })

  test("no ISO tool fails with SeedError", async () => {
    const dir = nextDir()
    const iso = join(dir, "seed.iso")
    const exit = await writeSeed(iso, seedFiles, execWithout(["genisoimage", "xorriso", "mkisofs"]))
    const error = failureOf(exit)
    expect(error).toBeInstanceOf(SeedError)
    expect(error.path).toBe(iso)
    expect(error.detail).toBe("no ISO 9660 tool found (install genisoimage or xorriso)")
    expect(error.exitCode).toBe(ExitCode.Environment)
    expect(readdirSync(dir)).toEqual([])
  })

  test("failing tool names itself and its error", async () => {
    const dir = nextDir()
    const iso = join(dir, "seed.iso")
    const error = failureOf(await writeSeed(iso, seedFiles, failingExec("No space left on device")))
    expect(error.detail).toBe("mkisofs: No space left on device")
    expect(existsSync(iso)).toBe(false)
    expect(readdirSync(dir)).toEqual([])
  })
})
