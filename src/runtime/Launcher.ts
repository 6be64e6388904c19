import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Data, Effect, Fiber, Result } from "effect"
import type { ConfigError, Resolved } from "../config/Resolve.ts"
import type { VmConfig } from "../domain/Config.ts"
import { ExitCode } from "../domain/ExitCode.ts"
import { type Layout, makeLayout } from "../domain/Layout.ts"
import { detectContainerRuntime } from "../host/ContainerRuntime.ts"
import { liveHostFacts } from "../host/HostFacts.ts"
import { Libvirt } from "../libvirt/Libvirt.ts"
import { redfishService } from "../redfish/RedfishServer.ts"
import { withConsolePassword } from "../webconsole/ConsolePassword.ts"
import { webConsoleService } from "../webconsole/WebConsole.ts"
import { accessBlock, hostBlock, vmBlock } from "./Banner.ts"
import { attachConsole } from "./Console.ts"
import { ensureLibvirt } from "./Daemons.ts"
import { runHostChecks } from "./HostChecks.ts"
import { fetchBootSource, resolveImages } from "./Images.ts"
import { stopOnExit, waitForPowerOff } from "./Lifecycle.ts"
import { planDomainXml } from "./MachineControl.ts"
import type { LaunchPlan } from "./Plan.ts"
import { applyPlan, checkHost, EnvironmentError, gatherFacts, makePlan } from "./Prepare.ts"
import { waitForAgent, waitForCloudInit, waitForKernel } from "./Readiness.ts"
import { removeRunRecord, writeRunRecord } from "./RunRecord.ts"
import { Timeline } from "./Timeline.ts"
import { acquireVmLock } from "./VmLock.ts"

export class GuestFailed extends Data.TaggedError("GuestFailed")<{ readonly detail: string }> {
  readonly exitCode = ExitCode.Guest
  override get message(): string {
    return this.detail
  }
}

/** A marker file: this VM directory contains a persistent disk, which later runs must keep. */
const persistentMarker = (layout: Layout) => join(layout.vmDir, ".persistent")

/**
 * Clears a VM directory left by an earlier ephemeral run that crashed, and refuses to touch
 * one that contains a persistent disk while PERSIST is off: that disk is user data.
 */
const prepareVmDir = (config: VmConfig, layout: Layout) =>
  Effect.gen(function* () {
    mkdirSync(layout.vmDir, { recursive: true })
    const persistent = existsSync(persistentMarker(layout))
    if (!config.runtime.persist) {
      if (persistent) {
        return yield* new EnvironmentError({
          detail:
            `${layout.vmDir} holds a persistent disk from an earlier run, and PERSIST is off; ` +
            "set PERSIST=1 to boot it, or remove that directory yourself to start afresh"
        })
      }
      for (const name of readdirSync(layout.vmDir)) {
        if (name !== ".lock") rmSync(join(layout.vmDir, name), { recursive: true, force: true })
      }
    } else if (!persistent) {
      writeFileSync(
        persistentMarker(layout),
        "This VM directory is kept between runs (PERSIST=1).\n"
      )
    }
  })

/** Removes the VM directory of an ephemeral run, which contains only files this run created. */
const removeEphemeralDir = (config: VmConfig, layout: Layout) =>
  Effect.sync(() => {
    if (!config.runtime.persist) rmSync(layout.vmDir, { recursive: true, force: true })
  })

/** Replaces a domain of the same name left by a crashed run, so the new definition applies. */
const replaceLeftoverDomain = (name: string) =>
  Effect.gen(function* () {
    const libvirt = yield* Libvirt
    const state = yield* libvirt.state(name)
    if (state === undefined) return
    if (state === "shut off") {
      yield* Effect.logInfo(`redefining the domain ${name} from this run's configuration`)
    } else {
      yield* Effect.logWarning(
        `replacing the domain ${name} left by an earlier run (it was ${state})`
      )
    }
    if (state !== "shut off") yield* libvirt.destroy(name).pipe(Effect.ignore)
    yield* libvirt.undefine(name)
  })

/**
 * Starts the domain. When passt was chosen and fails to start (a sandbox the probe could not
 * foresee, such as a seccomp rule on another syscall), the domain is defined again with QEMU's
 * user networking, which has the same port forwards, and started once more.
 */
const startDomain = (plan: LaunchPlan) =>
  Effect.gen(function* () {
    const libvirt = yield* Libvirt
    const name = plan.config.name
    const started = yield* libvirt.start(name).pipe(Effect.result)
    if (Result.isSuccess(started)) return
    const error = started.failure
    if (!plan.domain.passt || !/passt/i.test(error.detail)) return yield* error
    yield* Effect.logWarning(
      `passt failed to start (${error.detail.split("\n")[0]}); using QEMU's user networking`
    )
    const fallback: LaunchPlan = { ...plan, domain: { ...plan.domain, passt: false } }
    writeFileSync(plan.layout.domainXml, planDomainXml(fallback))
    yield* libvirt.undefine(name)
    yield* libvirt.define(plan.layout.domainXml, name)
    yield* libvirt.start(name)
  })

/** Headless: wait for the agent, then cloud-init, logging each phase and its duration. */
const awaitReadiness = (config: VmConfig, layout: Layout, timeline: Timeline) =>
  Effect.gen(function* () {
    yield* Effect.forkScoped(
      waitForKernel(layout.serialLog).pipe(
        Effect.tap(() => timeline.mark("kernel", "the kernel started"))
      )
    )
    const agentUp = yield* waitForAgent(config.name, "10 minutes")
    if (!agentUp) {
      yield* Effect.logWarning(
        "the guest agent did not answer within 10 minutes; guest-exec will not work until it does " +
          "(is qemu-guest-agent installed in the image?)"
      )
      return
    }
    yield* timeline.mark("agent", "the guest agent answers")
    if (!config.cloudInit.enabled) return
    const result = yield* waitForCloudInit(config.name)
    if (!result.datasource.includes("NoCloud")) {
      yield* Effect.logWarning(
        `cloud-init finished without reading the seed (datasource: ${result.datasource}); ` +
          "the login user and keys were not set up"
      )
    }
    for (const error of result.errors) yield* Effect.logWarning(`cloud-init: ${error}`)
    yield* timeline.mark(
      "cloudInit",
      result.errors.length === 0 ? "cloud-init finished" : "cloud-init finished with errors"
    )
  })

/** The main job: prepare, define, start, attach or wait, and stop cleanly. */
export const runVm = (
  initial: Resolved,
  noConsoleFlag: boolean,
  resolveAsIso: () => Effect.Effect<Resolved, ConfigError>
) =>
  Effect.gen(function* () {
    let resolved = initial
    let { config } = resolved
    const layout = makeLayout(config.data.root, config.name)
    const timeline = new Timeline(layout.bootReport)
    for (const note of resolved.notes) yield* Effect.logInfo(note)

    yield* ensureLibvirt(config.runtime.libvirtUri)
    mkdirSync(layout.vmsDir, { recursive: true })
    yield* acquireVmLock(layout)
    yield* prepareVmDir(config, layout)
    yield* Effect.addFinalizer(() => removeEphemeralDir(config, layout))

    const source = yield* fetchBootSource(config)
    if (source?._tag === "Iso" && !config.boot.isoDefaults) {
      yield* Effect.logInfo("BOOT_FROM is an ISO by its content; applying the ISO defaults")
      resolved = yield* resolveAsIso()
      config = resolved.config
    }
    const images = yield* resolveImages(config, source)
    yield* timeline.mark("image", "image ready")
    const facts = yield* gatherFacts(config, layout, images, false)
    yield* Effect.logInfo(`accelerator: ${facts.accelerator.accel} (${facts.accelerator.reason})`)
    if (facts.accelerator.accel === "tcg") {
      if (config.runtime.requireKvm) {
        return yield* new EnvironmentError({
          detail: `REQUIRE_KVM=1 but KVM is not usable: ${facts.accelerator.reason}`
        })
      }
      yield* Effect.logWarning(
        "running without KVM (TCG emulation): the guest runs 10 to 50 times slower; pass " +
          "--device /dev/kvm to the container, or set REQUIRE_KVM=1 to stop instead"
      )
    }
    // Web console: VNC_PASSWORD, or a password generated for this run, protects VNC.
    config = yield* withConsolePassword(config)
    const plan = makePlan(config, layout, facts)
    const problems = checkHost(plan)
    if (problems.length > 0) return yield* new EnvironmentError({ detail: problems.join("\n") })
    yield* runHostChecks(plan)
    for (const note of plan.notes) yield* Effect.logInfo(note)
    for (const warning of plan.warnings) yield* Effect.logWarning(warning)
    const container = detectContainerRuntime()
    yield* Effect.logInfo(hostBlock(liveHostFacts, config.data.root, facts.accelerator, container))
    yield* Effect.logInfo(vmBlock(plan))

    yield* applyPlan(plan)
    yield* timeline.mark("prepare", "disks, seed and domain XML prepared")
    const libvirt = yield* Libvirt
    yield* replaceLeftoverDomain(config.name)
    yield* libvirt.define(layout.domainXml, config.name)
    yield* Effect.addFinalizer(() =>
      config.runtime.persist ? Effect.void : libvirt.undefine(config.name).pipe(Effect.ignore)
    )
    yield* timeline.mark("define", "domain defined")

    yield* Effect.acquireRelease(startDomain(plan), () =>
      stopOnExit(config.name, config.runtime.shutdownTimeout)
    )
    yield* timeline.mark("start", "domain started")
    yield* Effect.logInfo(accessBlock(config, container.engine !== "none"))
    if (config.runtime.persist && !existsSync(layout.installedMarker)) {
      writeFileSync(layout.installedMarker, `first started ${new Date().toISOString()}\n`)
    }
    writeRunRecord({
      domain: config.name,
      uri: config.runtime.libvirtUri,
      pid: process.pid,
      cloudInit: config.cloudInit.enabled,
      startedAt: new Date().toISOString()
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => removeRunRecord(config.name)))
    // Web console and Redfish: each logs its own failure and never ends the run.
    if (config.graphics.mode === "novnc") yield* Effect.forkScoped(webConsoleService(plan))
    if (config.redfish.enabled) yield* Effect.forkScoped(redfishService(plan))

    const useConsole =
      !config.runtime.noConsole &&
      !noConsoleFlag &&
      process.stdin.isTTY === true &&
      process.stdout.isTTY === true
    if (useConsole) {
      yield* attachConsole(config.name, config.runtime.libvirtUri)
      yield* Effect.logInfo("console detached; shutting the guest down")
      return
    }
    const readiness = yield* Effect.forkScoped(
      awaitReadiness(config, layout, timeline).pipe(Effect.tap(() => timeline.writeReport()))
    )
    if (config.redfish.enabled) {
      // Redfish: the launcher is the machine's BMC, so it stays up while the guest is off.
      yield* Effect.logInfo(`serving the BMC of ${config.name} until SIGTERM`)
      return yield* Effect.never
    }
    yield* Effect.logInfo(
      `waiting for the guest ${config.name} to power off (SIGTERM shuts it down)`
    )
    yield* waitForPowerOff(config.name)
    yield* Fiber.interrupt(readiness)
    yield* Effect.logInfo("the guest powered off")
  }).pipe(Effect.scoped, Effect.annotateLogs({ vm: initial.config.name }))
