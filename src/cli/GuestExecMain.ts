import { BunChildProcessSpawner, BunFileSystem, BunPath, BunStdio } from "@effect/platform-bun"
import { Cause, Data, Effect, Exit, Fiber, Layer, Result } from "effect"
import { AgentTransport } from "../agent/AgentTransport.ts"
import { GuestAgent } from "../agent/GuestAgent.ts"
import { guestExecUsage, parseGuestExecArgs, runGuestExec } from "../agent/GuestExec.ts"
import { GuestExecExit, isExpectedFailure } from "../domain/ExitCode.ts"
import { Exec } from "../process/Exec.ts"
import { liveRunRecords } from "../runtime/RunRecord.ts"

/**
 * NOTE: guest-exec parses its own arguments instead of going through effect/cli, because
 * everything after COMMAND belongs to the guest command (`guest-exec ls -la /tmp` must not see
 * `-la` as an option), which effect/cli's parser does not allow without `--`.
 */

class NoDomain extends Data.TaggedError("NoDomain")<{ readonly detail: string }> {
  readonly exitCode = GuestExecExit.Failed
  override get message(): string {
    return this.detail
  }
}

/**
 * Picks the domain when `--domain` is not given: the VM of the one vm-runner running here (its
 * run record), or, among several, the one named by GUEST_NAME.
 */
const defaultDomain = (): Result.Result<{ domain: string; uri: string | undefined }, NoDomain> => {
  const records = liveRunRecords()
  const [only] = records
  if (records.length === 1 && only !== undefined)
    return Result.succeed({ domain: only.domain, uri: only.uri })
  const named = records.find((record) => record.domain === process.env.GUEST_NAME?.trim())
  if (named !== undefined) return Result.succeed({ domain: named.domain, uri: named.uri })
  const detail =
    records.length === 0
      ? "no vm-runner VM is running here; start one, or name a libvirt domain with --domain NAME"
      : `several VMs run here (${records.map((record) => record.domain).join(", ")}); ` +
        "choose one with --domain NAME"
  return Result.fail(new NoDomain({ detail }))
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
      ? defaultDomain()
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
