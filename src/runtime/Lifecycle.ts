import { Deferred, Duration, Effect, Schedule } from "effect"
import { ExitCode } from "../domain/ExitCode.ts"
import { Libvirt } from "../libvirt/Libvirt.ts"
import { forceStop, stopOutcome } from "./Signals.ts"

/** How often the power button is pressed again while a guest ignores it. */
export const acpiRepeatInterval = Duration.seconds(5)

/** How often the launcher checks whether the guest is still running. */
export const statePollInterval = "500 millis"

const isRunning = (domain: string) =>
  Effect.gen(function* () {
    const libvirt = yield* Libvirt
    const state = yield* libvirt.state(domain).pipe(Effect.orElseSucceed(() => undefined))
    return (
      state === "running" || state === "paused" || state === "in shutdown" || state === "blocked"
    )
  })

/** Completes when the domain is no longer running (powered off, crashed or undefined). */
export const waitForPowerOff = (domain: string) =>
  isRunning(domain).pipe(
    Effect.repeat({ schedule: Schedule.spaced(statePollInterval), while: (running) => running }),
    Effect.asVoid
  )

/** Waits up to `limit` for the guest to power off; returns whether it did. */
const poweredOffWithin = (domain: string, limit: Duration.Input) =>
  waitForPowerOff(domain).pipe(
    Effect.as(true),
    Effect.timeoutOption(limit),
    Effect.map((outcome) => outcome._tag === "Some"),
    Effect.raceFirst(Deferred.await(forceStop).pipe(Effect.as(false)))
  )

/**
 * Powers the guest off: an ACPI power-button press, then, at half the timeout, the guest
 * agent's shutdown in case the guest ignores ACPI (no acpid, a firmware menu), then a hard
 * stop when `timeoutSeconds` have passed. A second signal skips straight to the hard stop.
 * Returns true when the guest powered itself off.
 */
export const shutdownGuest = Effect.fn("Lifecycle.shutdownGuest")(function* (
  domain: string,
  timeoutSeconds: number
) {
  const libvirt = yield* Libvirt
  if (!(yield* isRunning(domain))) return true
  const half = Duration.millis((timeoutSeconds * 1000) / 2)

  const startedAt = performance.now()
  const poweredOff = (how: string) =>
    Effect.logInfo(
      `the guest powered off ${how} (${((performance.now() - startedAt) / 1000).toFixed(1)} s)`
    ).pipe(Effect.as(true))
  yield* Effect.logInfo(`shutting the guest down (ACPI power button, up to ${timeoutSeconds} s)`)
  // A press while the guest is still booting is lost (firmware and early boot ignore it), so
  // press again every few seconds until half the time is used.
  const acpiDeadline = performance.now() + Duration.toMillis(half)
  while (performance.now() < acpiDeadline && !Deferred.isDoneUnsafe(forceStop)) {
    yield* libvirt
      .shutdown(domain, "acpi")
      .pipe(Effect.catch((error) => Effect.logDebug(error.message)))
    const remaining = Math.max(0, acpiDeadline - performance.now())
    const limit = Duration.millis(Math.min(remaining, Duration.toMillis(acpiRepeatInterval)))
    if (yield* poweredOffWithin(domain, limit)) return yield* poweredOff("after the ACPI request")
  }

  if (!Deferred.isDoneUnsafe(forceStop)) {
    yield* Effect.logWarning("the guest ignored ACPI; asking the guest agent to power off")
    yield* libvirt
      .shutdown(domain, "agent")
      .pipe(Effect.catch((error) => Effect.logDebug(error.message)))
    if (yield* poweredOffWithin(domain, half)) return yield* poweredOff("through the guest agent")
  }

  yield* Effect.logWarning(
    "the guest did not power off in time; stopping it hard (like pulling the plug)"
  )
  yield* libvirt.destroy(domain).pipe(Effect.catch((error) => Effect.logWarning(error.message)))
  return false
})

/** The finalizer of a started guest: shut it down and record the exit code it implies. */
export const stopOnExit = (domain: string, timeoutSeconds: number) =>
  shutdownGuest(domain, timeoutSeconds).pipe(
    Effect.tap((clean) =>
      Effect.sync(() => {
        if (!clean) stopOutcome.exitCode = ExitCode.Guest
      })
    ),
    Effect.asVoid
  )
