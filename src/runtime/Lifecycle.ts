import { Clock, Deferred, Duration, Effect, Schedule } from "effect"
import { ExitCode } from "../domain/ExitCode.ts"
import { Libvirt } from "../libvirt/Libvirt.ts"
import { forceStop, stopOutcome } from "./Signals.ts"

/** How often the power button is pressed again while a guest ignores it. */
export const acpiRepeatInterval = Duration.seconds(5)

/** How often the launcher checks whether the guest is still running. */
export const statePollInterval = "500 millis"

/** Monotonic milliseconds from the Effect clock, which tests replace with TestClock. */
const nowMillis = Clock.monotonicTimeNanos.pipe(Effect.map((nanos) => Number(nanos) / 1e6))

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
 * How long a guest gets to react to the power button before the guest agent is asked as well.
 * Guests that handle ACPI start powering off within a second or two. Some images ignore the
 * button altogether (no ACPI button driver loaded, a firmware menu, an installer).
 */
export const acpiGrace = Duration.seconds(10)

/**
 * Powers the guest off. It presses the ACPI power button every few seconds, because a press
 * during early boot is lost. After `acpiGrace` it also requests the guest agent's shutdown,
 * until the agent accepts it. When `timeoutSeconds` have passed, or at a second signal, it
 * stops the guest hard. Returns true when the guest powered itself off.
 */
export const shutdownGuest = Effect.fn("Lifecycle.shutdownGuest")(function* (
  domain: string,
  timeoutSeconds: number
) {
  const libvirt = yield* Libvirt
  if (!(yield* isRunning(domain))) return true

  const startedAt = yield* nowMillis
  const deadline = startedAt + timeoutSeconds * 1000
  const agentFrom = startedAt + Duration.toMillis(acpiGrace)
  let agentAccepted = false
  const poweredOff = nowMillis.pipe(
    Effect.flatMap((now) => {
      const how = agentAccepted
        ? "after the ACPI and guest agent requests"
        : "after the ACPI request"
      return Effect.logInfo(
        `the guest powered off ${how} (${((now - startedAt) / 1000).toFixed(1)} s)`
      )
    }),
    Effect.as(true)
  )
  yield* Effect.logInfo(`shutting the guest down (ACPI power button, up to ${timeoutSeconds} s)`)
  while ((yield* nowMillis) < deadline && !Deferred.isDoneUnsafe(forceStop)) {
    yield* libvirt
      .shutdown(domain, "acpi")
      .pipe(Effect.catch((error) => Effect.logDebug(error.message)))
    if (!agentAccepted && (yield* nowMillis) >= agentFrom) {
      agentAccepted = yield* libvirt.shutdown(domain, "agent").pipe(
        Effect.as(true),
        Effect.catch((error) => Effect.logDebug(error.message).pipe(Effect.as(false)))
      )
      if (agentAccepted)
        yield* Effect.logInfo(
          "the guest is slow to react to ACPI; the guest agent is shutting it down too"
        )
    }
    const remaining = Math.max(0, deadline - (yield* nowMillis))
    const limit = Duration.millis(Math.min(remaining, Duration.toMillis(acpiRepeatInterval)))
    if (yield* poweredOffWithin(domain, limit)) return yield* poweredOff
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
