import { createSocket } from "node:dgram"
import { createServer } from "node:net"
import { Effect } from "effect"
import type { FilesystemShare, VmConfig } from "../domain/Config.ts"
import { type HostFacts, liveHostFacts } from "../host/HostFacts.ts"
import { Libvirt } from "../libvirt/Libvirt.ts"
import type { LaunchPlan } from "./Plan.ts"
import { EnvironmentError } from "./Prepare.ts"

/** One host check: `--dry-run` prints it, and the run stops when one is not ok. */
export interface HostCheck {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
}

export interface HostCheckReport {
  readonly checks: ReadonlyArray<HostCheck>
  /** Problems that let the VM run with less than the configuration requests. */
  readonly warnings: ReadonlyArray<string>
}

/** A host port that QEMU, passt or vm-runner itself listens on, and the variable that sets it. */
export interface HostPort {
  readonly variable: string
  readonly port: number
  readonly protocol: "tcp" | "udp"
  /** True when QEMU or passt (started by libvirt) binds it, false when vm-runner does. */
  readonly boundByLibvirt: boolean
}

/** The result of binding a host port on every IPv4 address. */
export type BindOutcome =
  | { readonly _tag: "Free" }
  | { readonly _tag: "InUse" }
  | { readonly _tag: "PermissionDenied" }
  | { readonly _tag: "Failed"; readonly code: string }

/** The kernel's default for `net.ipv4.ip_unprivileged_port_start`. */
const defaultUnprivilegedPortStart = 1024

const qemuConfPath = "/etc/libvirt/qemu.conf"

/** Lists the host ports of the configuration: forwards on a NAT NIC, VNC, noVNC and Redfish. */
export const listHostPorts = (config: VmConfig): Array<HostPort> => {
  const ports: Array<HostPort> = []
  if (config.network.nics.some((nic) => nic.mode === "nat")) {
    ports.push({
      variable: "SSH_PORT",
      port: config.network.sshPort,
      protocol: "tcp",
      boundByLibvirt: true
    })
    for (const forward of config.network.portForwards) {
      ports.push({
        variable: "PORT_FWD",
        port: forward.host,
        protocol: forward.protocol,
        boundByLibvirt: true
      })
    }
  }
  if (config.graphics.mode !== "none") {
    const vnc = config.graphics.vncPort
    ports.push({ variable: "VNC_PORT", port: vnc, protocol: "tcp", boundByLibvirt: true })
  }
  if (config.graphics.mode === "novnc") {
    const novnc = config.graphics.novncPort
    ports.push({ variable: "NOVNC_PORT", port: novnc, protocol: "tcp", boundByLibvirt: false })
  }
  if (config.redfish.enabled) {
    const redfish = config.redfish.port
    ports.push({ variable: "REDFISH_PORT", port: redfish, protocol: "tcp", boundByLibvirt: false })
  }
  return ports
}

const outcomeOf = (error: NodeJS.ErrnoException): BindOutcome =>
  error.code === "EADDRINUSE"
    ? { _tag: "InUse" }
    : error.code === "EACCES"
      ? { _tag: "PermissionDenied" }
      : { _tag: "Failed", code: error.code ?? error.message }

/**
 * Binds `port` on 0.0.0.0 and releases it at once. QEMU's user networking listens on every
 * IPv4 address, so a port another program holds on any address is reported as in use.
 */
export const probeBind = (port: number, protocol: "tcp" | "udp"): Promise<BindOutcome> =>
  new Promise((resolve) => {
    const onError = (error: NodeJS.ErrnoException) => resolve(outcomeOf(error))
    if (protocol === "udp") {
      const socket = createSocket("udp4")
      socket.once("error", onError)
      socket.bind(port, "0.0.0.0", () => socket.close(() => resolve({ _tag: "Free" })))
      return
    }
    const server = createServer()
    server.once("error", onError)
    server.listen(port, "0.0.0.0", () => server.close(() => resolve({ _tag: "Free" })))
  })

/** Reads the first port a process without CAP_NET_BIND_SERVICE may bind in this namespace. */
export const unprivilegedPortStart = (host: HostFacts): number => {
  const text = host.readText("/proc/sys/net/ipv4/ip_unprivileged_port_start")?.trim()
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : defaultUnprivilegedPortStart
}

/**
 * Reads the user libvirt runs QEMU as from qemu.conf. Returns undefined when the file cannot be
 * read, and `libvirt-qemu` when it sets no user, because Debian builds libvirt with that default.
 */
export const qemuUserOf = (qemuConf: string | undefined): string | undefined => {
  if (qemuConf === undefined) return undefined
  const matches = [...qemuConf.matchAll(/^\s*user\s*=\s*"([^"]*)"/gm)]
  return matches.at(-1)?.[1] ?? "libvirt-qemu"
}

/** Tells whether a qemu.conf user is root: by name, or by number with libvirt's `+` prefix. */
const isRootUser = (user: string) => user === "root" || user === "+0" || user === "0"

export interface PortContext {
  /** `net.ipv4.ip_unprivileged_port_start` of this network namespace. */
  readonly unprivilegedStart: number
  /** The QEMU user of a local libvirtd, or undefined when it is unknown. */
  readonly qemuUser: string | undefined
  /** A domain of this name is running and will be replaced, so its ports count as free. */
  readonly leftoverDomain: string | undefined
}

/** Turns one port's bind outcome into a check, naming the variable and what to change. */
export const portCheck = (
  hostPort: HostPort,
  outcome: BindOutcome,
  context: PortContext
): HostCheck => {
  const { variable, port, protocol } = hostPort
  const name = `${variable} ${port}/${protocol}`
  const subject = `host ${protocol.toUpperCase()} port ${port}`
  const start = context.unprivilegedStart
  const privileged = `below net.ipv4.ip_unprivileged_port_start=${start}`
  if (outcome._tag === "PermissionDenied") {
    return {
      name,
      ok: false,
      detail:
        `${subject} is ${privileged}, and vm-runner lacks CAP_NET_BIND_SERVICE. Keep that ` +
        `capability (Docker grants it unless --cap-drop removes it), or give ${variable} a ` +
        `host port of ${start} or above`
    }
  }
  const user = context.qemuUser
  if (hostPort.boundByLibvirt && port < start && user !== undefined && !isRootUser(user)) {
    return {
      name,
      ok: false,
      detail:
        `${subject} is ${privileged}, and libvirt runs QEMU as ${user} (user in ` +
        `${qemuConfPath}), which may not listen on it. Give ${variable} a host port of ` +
        `${start} or above, or set user = "root" in ${qemuConfPath}`
    }
  }
  if (outcome._tag === "InUse") {
    if (context.leftoverDomain !== undefined) {
      return {
        name,
        ok: true,
        detail:
          `in use, presumably by the domain ${context.leftoverDomain}, ` + "which this run replaces"
      }
    }
    return {
      name,
      ok: false,
      detail:
        `${subject} is already in use by another program ('ss -lntup' shows which). Stop it, ` +
        `or set ${variable} to a free port`
    }
  }
  if (outcome._tag === "Failed") {
    return { name, ok: false, detail: `cannot listen on ${subject}: ${outcome.code}` }
  }
  return { name, ok: true, detail: "free" }
}

/** `IFF_UP` in /sys/class/net/DEVICE/flags: the interface is administratively up. */
const interfaceUpFlag = 0x1

/**
 * Warns about a bridge or direct device that is down. libvirt still attaches the NIC, but the
 * guest gets no traffic on it. A device that does not exist is a configuration error already.
 */
export const networkDeviceWarnings = (config: VmConfig, host: HostFacts): Array<string> => {
  const warnings: Array<string> = []
  for (const nic of config.network.nics) {
    const device = nic.mode === "bridge" ? nic.bridge : nic.directDevice
    if (nic.mode === "nat" || device === undefined) continue
    const flags = Number.parseInt(host.readText(`/sys/class/net/${device}/flags`) ?? "", 16)
    if (Number.isNaN(flags) || (flags & interfaceUpFlag) !== 0) continue
    warnings.push(
      `NIC ${nic.index} uses ${device}, which is down, so the guest gets no traffic on it ` +
        `until the device is up ('ip link set ${device} up')`
    )
  }
  return warnings
}

/**
 * Warns about each read-only virtiofs share that libvirt cannot make read-only (libvirt before
 * 11 rejects `<readonly/>` on virtiofs), so only the guest's read-only mount protects it.
 */
export const readonlyVirtiofsWarnings = (
  shares: ReadonlyArray<FilesystemShare>,
  libvirtEnforcesReadonly: boolean
): Array<string> =>
  libvirtEnforcesReadonly
    ? []
    : shares
        .filter((share) => share.driver === "virtiofs" && share.readonly)
        .map((share) => {
          const prefix = share.index === 1 ? "FILESYSTEM" : `FILESYSTEM${share.index}`
          return (
            `${prefix}_READONLY=1: this libvirt cannot make a virtiofs share read-only, so ` +
            `only the guest's read-only mount protects ${share.source}, and root in the guest ` +
            `can remount it read-write; set ${prefix}_DRIVER=9p for a share the host enforces`
          )
        })

/** The facts the port checks need from this host. */
const portContext = (
  config: VmConfig,
  host: HostFacts,
  leftoverDomain: string | undefined
): PortContext => ({
  unprivilegedStart: unprivilegedPortStart(host),
  qemuUser:
    config.runtime.libvirtUri === "qemu:///system"
      ? qemuUserOf(host.readText(qemuConfPath))
      : undefined,
  leftoverDomain
})

/**
 * Runs every host check of the plan. `leftoverDomain` names a running domain that the run
 * replaces before it starts its own, whose ports are then free again.
 */
export const collectHostChecks = (
  plan: LaunchPlan,
  leftoverDomain: string | undefined,
  host: HostFacts = liveHostFacts
) =>
  Effect.gen(function* () {
    const context = portContext(plan.config, host, leftoverDomain)
    const checks: Array<HostCheck> = []
    for (const hostPort of listHostPorts(plan.config)) {
      const outcome = yield* Effect.promise(() => probeBind(hostPort.port, hostPort.protocol))
      checks.push(portCheck(hostPort, outcome, context))
    }
    const warnings = [
      ...networkDeviceWarnings(plan.config, host),
      ...readonlyVirtiofsWarnings(plan.config.filesystems, plan.domain.virtiofsReadonly)
    ]
    return { checks, warnings } satisfies HostCheckReport
  })

/**
 * Returns `name` when a domain of that name is running, or undefined. When no other vm-runner
 * holds the VM directory's lock, such a domain was left by a crashed run, and the run destroys
 * it before it starts its own.
 */
export const runningLeftover = (name: string) =>
  Effect.gen(function* () {
    const libvirt = yield* Libvirt
    const state = yield* libvirt.state(name).pipe(Effect.orElseSucceed(() => undefined))
    return state === undefined || state === "shut off" ? undefined : name
  })

/**
 * Checks the host right before the run writes and defines anything, logs the warnings, and
 * stops the run with every failed check at once. The run holds the VM directory's lock here.
 */
export const runHostChecks = Effect.fn("HostChecks.run")(function* (plan: LaunchPlan) {
  const leftover = yield* runningLeftover(plan.config.name)
  const report = yield* collectHostChecks(plan, leftover)

  for (const check of report.checks) {
    yield* Effect.logDebug(
      `host check ${check.name}: ${check.ok ? "ok" : "failed"}, ${check.detail}`
    )
  }
  for (const warning of report.warnings) yield* Effect.logWarning(warning)
  const failed = report.checks.filter((check) => !check.ok)
  if (failed.length > 0) {
    return yield* new EnvironmentError({
      detail: failed.map((check) => `${check.name}: ${check.detail}`).join("\n")
    })
  }
})
