import { Console, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { CatalogueError } from "../catalogue/Catalogue.ts"
import { loadCatalogue, loadConfig } from "../config/LoadConfig.ts"
import { normalizeArch } from "../domain/Arch.ts"
import { ExitCode } from "../domain/ExitCode.ts"
import { liveHostFacts } from "../host/HostFacts.ts"
import { previewLaunch } from "../runtime/Preview.ts"
import { failIfChecksFailed, renderPreview } from "./DryRun.ts"
import { checkHealth } from "./Health.ts"
import { renderDistros } from "./ListDistros.ts"
import { libvirtLayer, runCommand, runtimeLayer } from "./RunCommand.ts"
import { renderConfig } from "./ShowConfig.ts"
import { UsageError } from "./UsageError.ts"

const showConfig = Flag.Boolean("show-config").pipe(
  Flag.withDescription("Print the resolved configuration and exit"),
  Flag.withDefault(false)
)
const json = Flag.Boolean("json").pipe(
  Flag.withDescription("With --show-config: print JSON instead of YAML"),
  Flag.withDefault(false)
)
const showXml = Flag.Boolean("show-xml").pipe(
  Flag.withDescription("Print the libvirt domain XML this run would define, and exit"),
  Flag.withDefault(false)
)
const dryRun = Flag.Boolean("dry-run").pipe(
  Flag.withDescription(
    "Check the configuration and the host (KVM, ports, files, firmware, tools, free space), " +
      "print the launch plan, and exit non-zero if a real run would fail"
  ),
  Flag.withDefault(false)
)
const noConsole = Flag.Boolean("no-console").pipe(
  Flag.withDescription("Do not attach the serial console (same as NO_CONSOLE=1)"),
  Flag.withDefault(false)
)
const listDistros = Flag.Boolean("list-distros").pipe(
  Flag.withDescription("Print the distributions DISTRO accepts and exit (also: list-distros ARCH)"),
  Flag.withDefault(false)
)

const env = process.env

/** Replaces the VNC password in domain XML with `********`, as `--show-config` masks it. */
export const maskXmlSecrets = (xml: string): string =>
  xml.replace(/\bpasswd=(["'])[^"']*\1/g, "passwd=$1********$1")

/**
 * Rejects flag combinations that would silently ignore one flag: the modes `--list-distros`,
 * `--show-config`, `--show-xml` and `--dry-run` exclude each other, and `--json` needs
 * `--show-config`. Without this check `vm-runner --json` would start a real run.
 */
export const checkFlagCombination = (flags: {
  readonly listDistros: boolean
  readonly showConfig: boolean
  readonly showXml: boolean
  readonly dryRun: boolean
  readonly json: boolean
}): string | undefined => {
  const modes = [
    flags.listDistros && "--list-distros",
    flags.showConfig && "--show-config",
    flags.showXml && "--show-xml",
    flags.dryRun && "--dry-run"
  ].filter((mode) => mode !== false)
  if (modes.length > 1) return `${modes.join(" and ")} exclude each other; give one of them`
  if (flags.json && !flags.showConfig) {
    return "--json works only with --show-config (vm-runner --show-config --json)"
  }
  return undefined
}

const printDistros = (archFilter: string | undefined) =>
  Effect.gen(function* () {
    const { catalogue } = yield* loadCatalogue(env, liveHostFacts)
    const arch = archFilter === undefined ? undefined : normalizeArch(archFilter)
    if (archFilter !== undefined && arch === undefined) {
      return yield* new UsageError({
        message: `unknown architecture ${JSON.stringify(archFilter)}; expected x86_64, amd64, aarch64 or arm64`
      })
    }
    yield* Console.log(renderDistros(catalogue, arch).trimEnd())
  })

const listDistrosCommand = Command.make(
  "list-distros",
  {
    arch: Argument.String("arch").pipe(
      Argument.withDescription("x86_64 or aarch64"),
      Argument.optional
    )
  },
  ({ arch }) => printDistros(Option.getOrUndefined(arch))
).pipe(
  Command.withDescription("Print the distributions DISTRO accepts, optionally for one architecture")
)

const healthCommand = Command.make(
  "health",
  {
    domain: Flag.String("domain").pipe(
      Flag.withDescription("Domain to check (default: the one this container runs)"),
      Flag.optional
    ),
    cloudInit: Flag.Boolean("cloud-init").pipe(
      Flag.withDescription("Also require cloud-init to have finished"),
      Flag.withDefault(false)
    )
  },
  ({ domain, cloudInit }) =>
    checkHealth(Option.getOrUndefined(domain), cloudInit).pipe(
      Effect.provide(libvirtLayer(env.LIBVIRT_URI?.trim() || "qemu:///system"))
    )
).pipe(Command.withDescription("Exit 0 when the VM runs and its guest agent responds"))

const root = Command.make(
  "vm-runner",
  { showConfig, json, showXml, dryRun, noConsole, listDistros },
  (flags) =>
    Effect.gen(function* () {
      const conflict = checkFlagCombination(flags)
      if (conflict !== undefined) return yield* new UsageError({ message: conflict })
      if (flags.listDistros) return yield* printDistros(undefined)
      const loaded = yield* loadConfig(env, liveHostFacts)
      for (const warning of loaded.warnings) yield* Effect.logWarning(warning)
      if (flags.showConfig) {
        yield* Console.log(renderConfig(loaded.config, flags.json).trimEnd())
        return
      }
      if (flags.showXml || flags.dryRun) {
        const preview = yield* previewLaunch(loaded).pipe(
          Effect.provide(runtimeLayer(loaded.config.runtime.libvirtUri, loaded.config.data.root))
        )
        if (flags.showXml) {
          yield* Console.log(maskXmlSecrets(preview.xml).trimEnd())
          return
        }
        for (const note of loaded.notes) yield* Effect.logInfo(note)
        yield* Console.log(renderPreview(preview).trimEnd())
        return yield* failIfChecksFailed(preview)
      }
      return yield* runCommand(loaded, flags.noConsole)
    })
).pipe(
  Command.withDescription(
    "Boot a cloud-image VM through libvirt from environment variables (see README for every " +
      "variable). Run a command in the guest with: vm-runner guest-exec COMMAND (guest-exec --help)"
  ),
  Command.withSubcommands([listDistrosCommand, healthCommand])
)

export const cli = Command.runWith(root, { version: "0.1.0" })
export { CatalogueError, ExitCode }
