import { isAbsolute, normalize } from "node:path"
import type { BootFrom, DataPaths, GraphicsMode, Runtime } from "../../domain/Config.ts"
import { defaultDataRoot } from "../../domain/Layout.ts"
import { isContainerId, parseVmName, type VmName } from "../../domain/VmName.ts"
import { describePathKind, type HostFacts } from "../../host/HostFacts.ts"
import type { EnvReader } from "../Env.ts"

/** The mount point that turns on persistence when a volume is mounted there. */
export const dataVolumePath = "/data"
/**
 * Seconds a guest gets to power off after SIGTERM. An idle Debian guest takes about 6 s under
 * TCG, but one still booting waits for systemd's stop jobs, whose default limit is 90 s.
 */
export const defaultShutdownTimeout = 90

/** Resolves the VM name: GUEST_NAME, then a HOSTNAME that is not a container id, then DISTRO. */
export const resolveVmName = (reader: EnvReader, from: BootFrom, distroKey: string): VmName => {
  const explicit = reader.get("GUEST_NAME")
  if (explicit !== undefined) {
    const name = parseVmName(explicit)
    if (name === undefined) {
      reader.problem(
        "GUEST_NAME",
        "expected 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit " +
          "(it names the libvirt domain, the VM directory and the guest hostname)",
        "GUEST_NAME=devbox"
      )
      return "vm" as VmName
    }
    return name
  }
  const hostname = reader.get("HOSTNAME")
  if (hostname !== undefined && !isContainerId(hostname)) {
    const name = parseVmName(hostname)
    if (name !== undefined) return name
    reader.notes.push(
      `HOSTNAME ${JSON.stringify(hostname)} is not usable as a VM name; set GUEST_NAME`
    )
  }
  const fallback = from._tag === "Catalogue" ? distroKey : "custom-vm"
  return parseVmName(fallback) ?? ("vm" as VmName)
}

export const resolveDataPaths = (reader: EnvReader, host: HostFacts): DataPaths => {
  const explicit = reader.get("DATA_DIR")
  if (explicit !== undefined) {
    const kind = host.pathKind(explicit)
    if (!isAbsolute(explicit) || normalize(explicit) === "/") {
      reader.problem(
        "DATA_DIR",
        "expected an absolute directory path other than /",
        "DATA_DIR=/data"
      )
    } else if (kind !== "directory" && kind !== "missing") {
      reader.problem(
        "DATA_DIR",
        `expected a directory, but it is ${describePathKind(kind)}`,
        "DATA_DIR=/data"
      )
    }
    return { volume: explicit, root: explicit }
  }
  if (host.isMountPoint(dataVolumePath)) return { volume: dataVolumePath, root: dataVolumePath }
  return { volume: undefined, root: defaultDataRoot }
}

export const resolveRuntime = (
  reader: EnvReader,
  data: DataPaths,
  graphics: GraphicsMode
): Runtime => {
  const persist = reader.bool("PERSIST", data.volume !== undefined)
  if (data.volume !== undefined && !reader.isSet("PERSIST")) {
    reader.notes.push(`PERSIST is on because a data volume is in use at ${data.volume}`)
  }
  const uri = reader.string("LIBVIRT_URI", "qemu:///system")
  if (!/^[a-z][a-z0-9+]*:\/\//.test(uri)) {
    reader.problem("LIBVIRT_URI", "expected a libvirt connection URI", "LIBVIRT_URI=qemu:///system")
  }
  return {
    persist,
    // The web console replaces the serial console unless NO_CONSOLE says otherwise.
    noConsole: reader.bool("NO_CONSOLE", graphics === "novnc"),
    requireKvm: reader.bool("REQUIRE_KVM", false),
    libvirtUri: uri,
    logVerbose: reader.bool("LOG_VERBOSE", false),
    downloadRetries: reader.integer("DOWNLOAD_RETRIES", 3, {
      min: 1,
      max: 10,
      example: "DOWNLOAD_RETRIES=5",
      unit: "attempts in total"
    }),
    shutdownTimeout: reader.integer("SHUTDOWN_TIMEOUT", defaultShutdownTimeout, {
      min: 1,
      max: 3600,
      example: "SHUTDOWN_TIMEOUT=120",
      unit: "seconds"
    })
  }
}
