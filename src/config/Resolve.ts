// Subpath imports keep the start-up path of --show-config clear of effect's barrel module.
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import type { Catalogue } from "../catalogue/Catalogue.ts"
import type { Boot, BootDevice, Network, Nic, VmConfig } from "../domain/Config.ts"
import { ExitCode } from "../domain/ExitCode.ts"
import { makeLayout } from "../domain/Layout.ts"
import type { HostFacts } from "../host/HostFacts.ts"
import { resolveBootFrom, resolveBootOrder, resolveCloudInit } from "./areas/Boot.ts"
import { resolveFilesystems } from "./areas/Filesystems.ts"
import {
  resolveArch,
  resolveCpus,
  resolveDevices,
  resolveDistro,
  resolveFirmware,
  resolveMemory
} from "./areas/Machine.ts"
import { resolveNetwork } from "./areas/Network.ts"
import { resolveDataPaths, resolveRuntime, resolveVmName } from "./areas/Runtime.ts"
import { resolveGraphics, resolveRedfish } from "./areas/Services.ts"
import { resolveStorage } from "./areas/Storage.ts"
import { type EnvMap, EnvReader, formatProblem, type Problem } from "./Env.ts"
import { typoWarnings } from "./KnownVariables.ts"
import { checkPortCollisions } from "./Ports.ts"

export interface ResolveInput {
  readonly env: EnvMap
  readonly host: HostFacts
  readonly catalogue: Catalogue
  readonly catalogueSource: string
  /** Set when BOOT_FROM turned out to be an ISO by its content, whatever its name says. */
  readonly isoByContent?: boolean
}

/** A valid configuration with the lines worth logging about how it was derived. */
export interface Resolved {
  readonly config: VmConfig
  readonly notes: ReadonlyArray<string>
  readonly warnings: ReadonlyArray<string>
}

export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly problems: ReadonlyArray<Problem>
  /** Variables that look misspelt or renamed; one of them may explain a problem. */
  readonly hints: ReadonlyArray<string>
}> {
  readonly exitCode = ExitCode.Config
  override get message(): string {
    const count = this.problems.length
    const heading = `invalid configuration (${count} problem${count === 1 ? "" : "s"}):`
    const lines = [heading, ...this.problems.map((problem) => `  ${formatProblem(problem)}`)]
    if (this.hints.length > 0) {
      lines.push(
        "variables that may be misspelt or renamed:",
        ...this.hints.map((hint) => `  ${hint}`)
      )
    }
    return lines.join("\n")
  }
}

/**
 * Completes the boot order: an ISO boots first, iPXE puts the network first, and a NIC marked
 * bootable adds `network` when the user's order lacks it.
 */
const finishBootOrder = (
  order: Array<BootDevice>,
  isoDefaults: boolean,
  network: Network,
  notes: Array<string>
): { order: ReadonlyArray<BootDevice>; nics: ReadonlyArray<Nic> } => {
  let result = [...order]
  if (isoDefaults && !result.includes("cdrom")) result = ["cdrom", ...result]
  let nics = network.nics
  if (network.ipxe.enabled) {
    result = ["network", ...result.filter((device) => device !== "network")]
    nics = nics.map((nic) => (nic.index === 1 ? { ...nic, boot: true } : nic))
  }
  if (nics.some((nic) => nic.boot) && !result.includes("network")) {
    result.push("network")
    notes.push("network added to the end of the boot order because a NIC has NETWORK_BOOT=1")
  }
  if (result.includes("network") && !nics.some((nic) => nic.boot)) {
    nics = nics.map((nic) => (nic.index === 1 ? { ...nic, boot: true } : nic))
  }
  return { order: result, nics }
}

export const resolveConfig = (input: ResolveInput): Result.Result<Resolved, ConfigError> => {
  const reader = new EnvReader(input.env)
  const { host } = input

  const distro = resolveDistro(reader, input.catalogue, input.catalogueSource)
  const from = resolveBootFrom(reader, host)
  const arch = resolveArch(reader, distro, from)
  const name = resolveVmName(reader, from, distro?.key ?? "vm")
  const data = resolveDataPaths(reader, host)
  const layout = makeLayout(data.root, name)
  const firmware = resolveFirmware(reader, arch)
  const memoryMiB = resolveMemory(reader, host)
  const cpus = resolveCpus(reader, host)
  const storage = resolveStorage(reader, host, layout.vmDir, firmware.machine)
  const isoDefaults =
    ((from._tag === "Url" || from._tag === "Path") && from.hint === "iso") ||
    input.isoByContent === true
  const bootOrder = resolveBootOrder(reader)
  const cloudInit = resolveCloudInit(reader, host, distro, isoDefaults)
  const network = resolveNetwork(reader, host, name, arch)
  const filesystems = resolveFilesystems(reader, host)
  const graphics = resolveGraphics(reader, host)
  const redfish = resolveRedfish(reader, name)
  const devices = resolveDevices(reader, firmware.machine)
  const runtime = resolveRuntime(reader, data, graphics.mode)
  checkPortCollisions(reader, network, graphics, redfish)
  const { order, nics } = finishBootOrder(bootOrder, isoDefaults, network, reader.notes)
  const boot: Boot = {
    from,
    ...firmware,
    order,
    isoDefaults,
    blankDisk: reader.bool("BLANK_DISK", from._tag === "Blank" || isoDefaults),
    forceIso: reader.bool("FORCE_ISO", false)
  }

  const hints = typoWarnings(input.env)
  if (reader.problems.length > 0 || distro === undefined) {
    return Result.fail(new ConfigError({ problems: reader.problems, hints }))
  }
  const config: VmConfig = {
    name,
    distro,
    arch,
    memoryMiB,
    cpus,
    storage,
    boot,
    cloudInit,
    network: { ...network, nics },
    filesystems,
    graphics,
    redfish,
    devices,
    data,
    runtime
  }
  return Result.succeed({
    config,
    notes: reader.notes,
    warnings: [...reader.warnings, ...hints]
  })
}
