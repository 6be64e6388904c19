import * as Result from "effect/Result"
import {
  builtInCatalogue,
  type Catalogue,
  mountedCataloguePath,
  parseCatalogue
} from "../catalogue/Catalogue.ts"
import { resolveConfig } from "../config/Resolve.ts"
import { normalizeArch } from "../domain/Arch.ts"
import { ExitCode } from "../domain/ExitCode.ts"
import { liveHostFacts } from "../host/HostFacts.ts"
import { formatLogLine } from "../runtime/LogFormat.ts"
import { renderDistros } from "./ListDistros.ts"
import { renderConfig } from "./ShowConfig.ts"

/**
 * NOTE: `--show-config` and `--list-distros` run here, outside effect/cli and the Effect
 * runtime, because scripts and health checks call them often and loading the whole command
 * tree costs several times the 25 ms these queries are meant to take. They read only the
 * environment and the catalogue; every other command goes through the command tree in Cli.ts.
 */

const log = (level: string, message: string) =>
  process.stderr.write(
    `${formatLogLine(level, message, { date: new Date(), vm: undefined, colour: process.stderr.isTTY === true })}\n`
  )

const fail = (message: string, exitCode: number) => {
  process.stderr.write(`vm-runner: ${message}\n`)
  return exitCode
}

const loadCatalogue = (): Result.Result<{ catalogue: Catalogue; source: string }, string> => {
  const explicit = process.env.DISTROS_FILE?.trim()
  const path =
    explicit !== undefined && explicit !== ""
      ? explicit
      : liveHostFacts.pathKind(mountedCataloguePath) === "file"
        ? mountedCataloguePath
        : undefined
  if (path === undefined) {
    const parsed = builtInCatalogue()
    return Result.isSuccess(parsed)
      ? Result.succeed({ catalogue: parsed.success, source: "the built-in catalogue" })
      : Result.fail(parsed.failure.message)
  }
  const text = liveHostFacts.readText(path)
  if (text === undefined) return Result.fail(`cannot read the distribution catalogue ${path}`)
  const parsed = parseCatalogue(text, path)
  return Result.isSuccess(parsed)
    ? Result.succeed({ catalogue: parsed.success, source: path })
    : Result.fail(parsed.failure.message)
}

const showConfig = (json: boolean): number => {
  const loaded = loadCatalogue()
  if (Result.isFailure(loaded)) return fail(loaded.failure, ExitCode.Config)
  const resolved = resolveConfig({
    env: process.env,
    host: liveHostFacts,
    catalogue: loaded.success.catalogue,
    catalogueSource: loaded.success.source
  })
  if (Result.isFailure(resolved)) return fail(resolved.failure.message, ExitCode.Config)
  for (const warning of resolved.success.warnings) log("Warn", warning)
  process.stdout.write(renderConfig(resolved.success.config, json))
  return ExitCode.Ok
}

const listDistros = (archFilter: string | undefined): number => {
  const loaded = loadCatalogue()
  if (Result.isFailure(loaded)) return fail(loaded.failure, ExitCode.Config)
  const arch = archFilter === undefined ? undefined : normalizeArch(archFilter)
  if (archFilter !== undefined && arch === undefined) {
    return fail(
      `unknown architecture ${JSON.stringify(archFilter)}; expected x86_64, amd64, aarch64 or arm64`,
      ExitCode.Usage
    )
  }
  const table = renderDistros(loaded.success.catalogue, arch)
  if (table === "") log("Warn", `no distributions for ${arch} in ${loaded.success.source}`)
  process.stdout.write(table)
  return ExitCode.Ok
}

/** Runs `args` when it is one of the fast queries; returns undefined for everything else. */
export const runFastCommand = (args: ReadonlyArray<string>): number | undefined => {
  const sorted = [...args].sort().join(" ")
  if (sorted === "--show-config") return showConfig(false)
  if (sorted === "--json --show-config") return showConfig(true)
  const [first, second, ...rest] = args
  if ((first === "--list-distros" || first === "list-distros") && rest.length === 0) {
    if (second === undefined || !second.startsWith("-")) return listDistros(second)
  }
  return undefined
}
