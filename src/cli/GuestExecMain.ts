import { BunChildProcessSpawner, BunFileSystem, BunPath, BunStdio } from "@effect/platform-bun"
import { Cause, Data, Duration, Effect, Exit, Fiber, Layer, Result } from "effect"
import { AgentTransport } from "../agent/AgentTransport.ts"
import { GuestAgent } from "../agent/GuestAgent.ts"
import { guestExecUsage, parseGuestExecArgs, runGuestExec } from "../agent/GuestExec.ts"
import { GuestExecExit, isExpectedFailure } from "../domain/ExitCode.ts"
import { Exec } from "../process/Exec.ts"
import { chooseRunningVm, liveRunRecords } from "../runtime/RunRecord.ts"

/**
 * NOTE: guest-exec parses its own arguments instead of going through effect/cli, because
 * everything after COMMAND belongs to the guest command (`guest-exec ls -la /tmp` must not see
 * `-la` as an option), which effect/cli's parser does not allow without `--`.
 */

class NoDomain extends Data.TaggedError("NoDomain")<{
  readonly detail: string
  readonly exitCode: number
}> {
  override get message(): string {
    return this.detail
  }
}

/**
 * Picks the domain when `--domain` is not given. No VM at all exits as an unreachable agent
 * does (127); several VMs without GUEST_NAME is a failure of guest-exec itself (125).
 */
const defaultDomain = (): Result.Result<{ domain: string; uri: string | undefined }, NoDomain> => {
  const choice = chooseRunningVm(liveRunRecords(), process.env.GUEST_NAME)
  switch (choice._tag) {
    case "Found":
      return Result.succeed({ domain: choice.record.domain, uri: choice.record.uri })
    case "None":
      return Result.fail(
        new NoDomain({ detail: choice.detail, exitCode: GuestExecExit.AgentNotConnected })
      )
    case "Ambiguous":
      return Result.fail(new NoDomain({ detail: choice.detail, exitCode: GuestExecExit.Failed }))
  }
}

/** Gap between looks for a launcher's run record while `--wait` runs. */
const recordPollMillis = 250

/**
 * Picks the default domain; with `--wait`, keeps looking until a launcher that is still
 * starting writes its run record, or the wait ends.
 */
const defaultDomainWithin = async (wait: Duration.Duration | undefined) => {
  const deadline = performance.now() + (wait === undefined ? 0 : Duration.toMillis(wait))
  for (;;) {
    const choice = defaultDomain()
    const missing =
      Result.isFailure(choice) && choice.failure.exitCode === GuestExecExit.AgentNotConnected
    if (!missing || performance.now() >= deadline) return choice
    await Bun.sleep(recordPollMillis)
  }
}

const agentLayer = (uri: string) =>
  GuestAgent.layer.pipe(
    Layer.provide(AgentTransport.layerAuto(uri)),
    Layer.provideMerge(Exec.layer),
    Layer.provide(BunChildProcessSpawner.layer),
    Layer.provide(Layer.mergeAll(BunFileSystem.layer, BunPath.layer))
  )

/** Runs `guest-exec ARGS` and returns the process exit status. */
export const guestExecMain = async (args: ReadonlyArray<string>): Promise<number> => {
  const parsed = parseGuestExecArgs(args)
  if (Result.isFailure(parsed)) {
    process.stderr.write(`guest-exec: ${parsed.failure.message}\n`)
    return parsed.failure.exitCode
  }
  const options = parsed.success
  if (options.help) {
    process.stdout.write(`${guestExecUsage}\n`)
    return 0
  }
  const target =
    options.domain === undefined
      ? await defaultDomainWithin(options.wait)
      : Result.succeed({ domain: options.domain, uri: undefined })
  if (Result.isFailure(target)) {
    process.stderr.write(`guest-exec: ${target.failure.message}\n`)
    return target.failure.exitCode
  }
  const uri = process.env.LIBVIRT_URI?.trim() || target.success.uri || "qemu:///system"
  const program = runGuestExec({
    domain: target.success.domain,
    command: options.command,
    ...(options.wait === undefined ? {} : { wait: options.wait }),
    ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
    output: options.spool ? "spool" : "capture"
  }).pipe(Effect.provide(Layer.mergeAll(agentLayer(uri), BunStdio.layer)))

  const fiber = Effect.runFork(program)
  // Ctrl-C or SIGTERM interrupts the run, which stops the guest command before exiting.
  const interrupt = () => fiber.interruptUnsafe()
  process.on("SIGINT", interrupt)
  process.on("SIGTERM", interrupt)
  const exit = await Effect.runPromise(Fiber.await(fiber))
  if (Exit.isSuccess(exit)) return exit.value
  const error = Cause.squash(exit.cause)
  if (isExpectedFailure(error)) {
    process.stderr.write(`guest-exec: ${error.message}\n`)
    return error.exitCode
  }
  if (Cause.hasInterruptsOnly(exit.cause)) return GuestExecExit.SignalBase + 2
  process.stderr.write(
    `guest-exec: internal error (a bug; please report it):\n${Cause.pretty(exit.cause)}\n`
  )
  return GuestExecExit.Failed
}
