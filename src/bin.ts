import { basename } from "node:path"
import { BunServices } from "@effect/platform-bun"
import { Cause, Deferred, Effect, Exit, Fiber, Layer } from "effect"
import { cli } from "./cli/Cli.ts"
import { ExitCode, isExpectedFailure } from "./domain/ExitCode.ts"
import { loggingLayer } from "./runtime/Logging.ts"
import { forceStop, stopOutcome } from "./runtime/Signals.ts"

/** Rewrites the documented `--list-distros [ARCH]` form into the subcommand. */
const normalizeArgs = (args: ReadonlyArray<string>): ReadonlyArray<string> =>
  args[0] === "--list-distros" ? ["list-distros", ...args.slice(1)] : args

const isCliError = (error: unknown): boolean =>
  typeof error === "object" &&
  error !== null &&
  "_tag" in error &&
  [
    "UnrecognizedOption",
    "DuplicateOption",
    "MissingOption",
    "MissingArgument",
    "UnexpectedArgument",
    "InvalidValue",
    "UnknownSubcommand",
    "ValidationError"
  ].includes(String(error._tag))

const exitCodeOf = (exit: Exit.Exit<unknown, unknown>): number => {
  if (Exit.isSuccess(exit)) return ExitCode.Ok
  const failure = exit.cause.reasons.find(Cause.isFailReason)
  if (failure !== undefined) {
    const error = failure.error
    if (isCliError(error)) return ExitCode.Usage
    if (typeof error === "object" && error !== null && "_tag" in error && error._tag === "ShowHelp")
      return ExitCode.Ok
    if (isExpectedFailure(error)) {
      process.stderr.write(`vm-runner: ${error.message}\n`)
      return error.exitCode
    }
  }
  if (Cause.hasInterruptsOnly(exit.cause)) return ExitCode.Ok
  process.stderr.write(
    `vm-runner: internal error (a bug; please report it with this output):\n${Cause.pretty(exit.cause)}\n`
  )
  return ExitCode.Internal
}

const main = async () => {
  const verbose = /^(1|true|yes|on)$/i.test(process.env.LOG_VERBOSE?.trim() ?? "")
  const invokedAs = basename(process.argv0)
  const args = process.argv.slice(2)
  if (invokedAs === "guest-exec" || args[0] === "guest-exec") {
    const { guestExecMain } = await import("./cli/GuestExecMain.ts")
    process.exit(await guestExecMain(invokedAs === "guest-exec" ? args : args.slice(1)))
  }
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
  const code = exitCodeOf(exit)
  process.exit(stopOutcome.exitCode ?? code)
}

main()
