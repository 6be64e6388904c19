import { Deferred, Effect } from "effect"

/**
 * Signal state shared by the entry point and the shutdown code. The first SIGTERM or SIGINT
 * interrupts the run, whose finalizers shut the guest down gracefully; a second one completes
 * `forceStop`, which cuts the graceful wait short.
 */
export const forceStop = Effect.runSync(Deferred.make<void>())

/** Exit code a finalizer decided on after an interrupted run, such as a forced power-off. */
export const stopOutcome: { exitCode: number | undefined; signal: string | undefined } = {
  exitCode: undefined,
  signal: undefined
}
