import { BunServices } from "@effect/platform-bun"
import { Cause, Deferred, Effect, Exit, Fiber, Layer } from "effect"
import { ExitCode, isExpectedFailure } from "../domain/ExitCode.ts"
import { loggingLayer } from "../runtime/Logging.ts"
import { forceStop, stopOutcome } from "../runtime/Signals.ts"
import { cli } from "./Cli.ts"

/** Rewrites the documented `--list-distros [ARCH]` form into the subcommand. */
const normalizeArgs = (args: ReadonlyArray<string>): ReadonlyArray<string> =>
  args[0] === "--list-distros" ? ["list-distros", ...args.slice(1)] : args

/** effect/cli's parse errors, which mean a command line that cannot run as given. */
const usageErrorTags = new Set([
  "UnrecognizedOption",
  "DuplicateOption",
  "MissingOption",
  "MissingArgument",
  "UnexpectedArgument",
  "InvalidValue",
  "UnknownSubcommand",
  "ValidationError"
])

const tagOf = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : undefined

/** Maps how the run ended to the process exit status, printing expected failures as one line. */
const exitCodeOf = (exit: Exit.Exit<unknown, unknown>): number => {
  if (Exit.isSuccess(exit)) return ExitCode.Ok
  const failure = exit.cause.reasons.find(Cause.isFailReason)
  if (failure !== undefined) {
    const error = failure.error
    const tag = tagOf(error)
    if (tag !== undefined && usageErrorTags.has(tag)) return ExitCode.Usage
    // effect/cli reports a parse error as help plus the errors, after printing both.
    if (tag === "ShowHelp") {
      const errors = (error as { readonly errors?: ReadonlyArray<unknown> }).errors ?? []
      return errors.length > 0 ? ExitCode.Usage : ExitCode.Ok
    }
    if (isExpectedFailure(error)) {
      process.stderr.write(`vm-runner: ${error.message}\n`)
      return error.exitCode
    }
  }
  // Interrupted by SIGTERM or SIGINT: the finalizers stopped the guest, and stopOutcome records how.
  if (Cause.hasInterruptsOnly(exit.cause)) return ExitCode.Ok
  process.stderr.write(
    `vm-runner: internal error (a bug; please report it with this output):\n${Cause.pretty(exit.cause)}\n`
  )
  return ExitCode.Internal
}

/**
 * Runs the command tree. The first SIGTERM or SIGINT interrupts the run, whose finalizers shut
 * the guest down; a second one cuts the graceful shutdown short.
 */
export const runCli = async (args: ReadonlyArray<string>): Promise<number> => {
  // A reader that goes away (a closed pipe, a detached log driver) must not end the run before
  // the guest is shut down: write errors on the standard streams are dropped instead.
  process.stdout.on("error", () => undefined)
  process.stderr.on("error", () => undefined)
  const verbose = /^(1|true|yes|on)$/i.test(process.env.LOG_VERBOSE?.trim() ?? "")
  const program = cli(normalizeArgs(args)).pipe(
    Effect.provide(Layer.mergeAll(BunServices.layer, loggingLayer(verbose)))
  )
  const fiber = Effect.runFork(program)
  let signals = 0
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1
    if (signals === 1) {
      stopOutcome.signal = signal
      process.stderr.write(`vm-runner: ${signal} received; stopping (send it again to force)\n`)
      fiber.interruptUnsafe()
    } else {
      Effect.runSync(Deferred.succeed(forceStop, undefined))
    }
  }
  process.on("SIGTERM", onSignal)
  process.on("SIGINT", onSignal)
  const exit = await Effect.runPromise(Fiber.await(fiber))
  return stopOutcome.exitCode ?? exitCodeOf(exit)
}
