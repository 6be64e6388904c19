import { randomBytes } from "node:crypto"
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Context, Data, Effect, Layer } from "effect"
import type { VmConfig } from "../domain/Config.ts"
import { ExitCode } from "../domain/ExitCode.ts"
import { Exec } from "../process/Exec.ts"
import {
  buildCloudConfig,
  buildMetaData,
  buildNetworkConfig,
  renderCloudConfig,
  renderMultipart,
  renderYaml
} from "./UserData.ts"

/** The files of a NoCloud seed, by the names cloud-init reads from the `cidata` volume. */
export interface SeedFiles {
  readonly "meta-data": string
  readonly "user-data": string
  readonly "network-config"?: string
}

export class SeedError extends Data.TaggedError("SeedError")<{
  readonly path: string
  readonly detail: string
}> {
  readonly exitCode = ExitCode.Environment
  override get message(): string {
    return `cannot write the cloud-init seed ${this.path}: ${this.detail}`
  }
}

/** Renders the seed's documents; pure apart from reading `CLOUD_INIT_USER_DATA`. */
export const renderSeedFiles = (config: VmConfig, instanceId: string, salt?: string): SeedFiles => {
  const builtIn = renderCloudConfig(buildCloudConfig(config, salt))
  const userDataPath = config.cloudInit.userDataPath
  const userData =
    userDataPath === undefined
      ? builtIn
      : renderMultipart(builtIn, readFileSync(userDataPath, "utf8"), `vm-runner-${instanceId}`)
  const network = buildNetworkConfig(config)
  return {
    "meta-data": renderYaml(buildMetaData(config, instanceId)),
    "user-data": userData,
    ...(network === undefined ? {} : { "network-config": renderYaml(network) })
  }
}

/** ISO 9660 writers that can make a seed, in order of preference, with their argv prefix. */
const isoTools: ReadonlyArray<ReadonlyArray<string>> = [
  ["genisoimage", "-quiet"],
  ["xorriso", "-as", "mkisofs", "-quiet"],
  ["mkisofs", "-quiet"]
]

/** Writes NoCloud seed ISOs (volume label `cidata`, Joliet and Rock Ridge names). */
export class Seed extends Context.Service<
  Seed,
  { write(path: string, files: SeedFiles): Effect.Effect<void, SeedError> }
>()("vm-runner/cloudinit/Seed") {
  static readonly layer = Layer.effect(
    Seed,
    Effect.gen(function* () {
      const exec = yield* Exec

      const write = Effect.fn("Seed.write")(function* (path: string, files: SeedFiles) {
        const dir = mkdtempSync(`${path}.files-`)
        const names = Object.keys(files) as Array<keyof SeedFiles>
        for (const name of names) writeFileSync(join(dir, name), files[name] ?? "")
        const temporary = `${path}.tmp-${randomBytes(4).toString("hex")}`
        let lastError = "no ISO 9660 tool found (install genisoimage or xorriso)"
        for (const tool of isoTools) {
          const argv = [
            ...tool,
            "-output",
            temporary,
            "-volid",
            "cidata",
            "-joliet",
            "-rock",
            ...names
          ]
          const result = yield* exec.run(argv, { cwd: dir, allowFailure: true }).pipe(
            Effect.map((outcome) => (outcome.exitCode === 0 ? "ok" : outcome.stderr.trim())),
            Effect.catchTag("CommandNotFound", () => Effect.succeed(undefined)),
            Effect.catch((error) => Effect.succeed(error.message))
          )
          if (result === "ok") {
            lastError = ""
            break
          }
          if (result !== undefined) lastError = `${tool[0]}: ${result}`
        }
        rmSync(dir, { recursive: true, force: true })
        if (lastError !== "") {
          rmSync(temporary, { force: true })
          return yield* new SeedError({ path, detail: lastError })
        }
        renameSync(temporary, path)
      })

      return Seed.of({ write })
    })
  )
}
