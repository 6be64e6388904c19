import { Context, Data, Duration, Effect, Layer, Option, Schedule, Schema } from "effect"
import { GuestExecExit } from "../domain/ExitCode.ts"
import {
  AgentCommand,
  type GuestExecArguments,
  GuestExecReply,
  GuestExecStatusReply,
  GuestFileOpenReply,
  GuestFileReadReply,
  GuestInfoReply,
  type GuestShutdownMode
} from "./AgentProtocol.ts"
import {
  type AgentError,
  AgentNotConnected,
  AgentProtocolError,
  AgentTransport,
  maxRequestBytes,
  type TransportKind
} from "./AgentTransport.ts"

/**
 * Time one agent command may take before vm-runner gives up on it. It is generous because a
 * guest emulated with TCG on a loaded host replies slowly; it exists to catch a hung agent.
 */
export const agentCallTimeout = Duration.seconds(30)

/** Time one `guest-ping` may take while waiting for the agent to come up. */
const pingTimeout = Duration.seconds(5)

/**
 * Gaps between `guest-exec-status` queries: from 2 ms, growing by half each time up to 50 ms,
 * for the first 5 seconds, then 250 ms. A short command's end is noticed within 50 ms; a long
 * one costs 4 queries a second, each handled by the guest agent.
 */
export const execPollSchedule = Schedule.concat(
  Schedule.min([Schedule.exponential("2 millis", 1.5), Schedule.spaced("50 millis")]).pipe(
    Schedule.upTo({ duration: "5 seconds" })
  ),
  Schedule.spaced("250 millis")
)

/**
 * Gap between pings while waiting for the agent to connect. libvirt reports "not connected"
 * at once, so the gap alone sets how soon a newly started agent is noticed.
 */
export const agentWaitSchedule = Schedule.spaced("500 millis")

/**
 * Bytes per `guest-file-read`. The base64 reply of 2 MiB is about 2.7 MiB, under the 4 MiB
 * that libvirt passes in one reply.
 */
const fileReadChunkBytes = 2 * 1024 * 1024

/** A command to start in the guest. `path` is looked up in the guest's PATH. */
export interface ExecRequest {
  readonly path: string
  readonly args?: ReadonlyArray<string>
  /** `NAME=value` entries; the agent then passes only these to the command. */
  readonly env?: ReadonlyArray<string>
  /** Standard input; without it the command reads from /dev/null. */
  readonly input?: Uint8Array
}

/** The end of a command: its exit code or signal, and its output decoded to bytes. */
export interface ExecOutcome {
  readonly pid: number
  readonly exitCode: number | undefined
  readonly signal: number | undefined
  readonly stdout: Uint8Array
  readonly stderr: Uint8Array
  readonly stdoutTruncated: boolean
  readonly stderrTruncated: boolean
}

/** The `guest-exec` request is larger than the transport delivers, so it was not sent. */
export class ExecRequestTooLarge extends Data.TaggedError("ExecRequestTooLarge")<{
  readonly domain: string
  readonly transport: TransportKind
  readonly inputBytes: number
  readonly requestBytes: number
  readonly maxBytes: number
}> {
  readonly exitCode = GuestExecExit.Failed
  override get message(): string {
    return (
      `the command for domain ${this.domain}, with ${this.inputBytes} bytes of standard input, ` +
      `makes a ${this.requestBytes}-byte request, over the ${this.maxBytes} bytes the ` +
      `${this.transport} transport delivers to the guest agent (base64 makes input a third ` +
      "larger). Copy large input into the guest another way, for example over SSH"
    )
  }
}

export class GuestFileTooLarge extends Data.TaggedError("GuestFileTooLarge")<{
  readonly domain: string
  readonly path: string
  readonly maxBytes: number
}> {
  readonly exitCode = GuestExecExit.Failed
  override get message(): string {
    return `${this.path} in domain ${this.domain} is larger than the ${this.maxBytes} bytes allowed`
  }
}

export type GuestAgentError = AgentError | ExecRequestTooLarge | GuestFileTooLarge

const decodeReply =
  <S extends Schema.Top & { readonly DecodingServices: never }>(
    schema: S,
    domain: string,
    command: string
  ) =>
  (value: unknown): Effect.Effect<S["Type"], AgentProtocolError> =>
    Schema.decodeUnknownEffect(schema)(value).pipe(
      Effect.mapError((error) => new AgentProtocolError({ domain, command, detail: error.message }))
    )

const fromBase64 = (data: string | undefined): Uint8Array =>
  data === undefined ? new Uint8Array() : Buffer.from(data, "base64")

/**
 * Errors that `waitForAgent` outlasts: the agent not up yet, a slow reply, and a domain that
 * its launcher has not defined yet (guest-exec --wait right after starting vm-runner).
 */
const isNotYetConnected = (error: AgentError): boolean =>
  error._tag === "AgentNotConnected" ||
  error._tag === "AgentTimedOut" ||
  error._tag === "DomainNotFound"

/** Guest agent operations for one or more domains, over whichever AgentTransport is provided. */
export class GuestAgent extends Context.Service<
  GuestAgent,
  {
    ping(domain: string): Effect.Effect<void, AgentError>
    /** Pings until the agent replies, for at most `maxWait`. */
    waitForAgent(domain: string, maxWait: Duration.Duration): Effect.Effect<void, AgentError>
    info(domain: string): Effect.Effect<GuestInfoReply, AgentError>
    /** Starts a command with its output captured, and returns its guest pid. */
    exec(domain: string, request: ExecRequest): Effect.Effect<number, GuestAgentError>
    execStatus(domain: string, pid: number): Effect.Effect<GuestExecStatusReply, AgentError>
    /** Polls `guest-exec-status` on `execPollSchedule` until the command has exited. */
    awaitExit(domain: string, pid: number): Effect.Effect<ExecOutcome, AgentError>
    /** Reads a guest file in 2 MiB chunks, passing each to `onChunk` before reading the next. */
    readFileChunks<E>(
      domain: string,
      path: string,
      onChunk: (chunk: Uint8Array) => Effect.Effect<void, E>
    ): Effect.Effect<void, AgentError | E>
    /** Reads a whole file from the guest, failing when it exceeds `maxBytes` (64 MiB). */
    readFile(
      domain: string,
      path: string,
      options?: { readonly maxBytes?: number }
    ): Effect.Effect<Uint8Array, GuestAgentError>
    /**
     * Asks the guest to power off, halt or reboot. Success means the agent accepted the request,
     * not that the guest has stopped: watch the domain's state for that.
     */
    shutdown(domain: string, mode?: GuestShutdownMode): Effect.Effect<void, AgentError>
  }
>()("vm-runner/agent/GuestAgent") {
  static readonly layer: Layer.Layer<GuestAgent, never, AgentTransport> = Layer.effect(
    GuestAgent,
    Effect.gen(function* () {
      const transport = yield* AgentTransport

      const run = (
        domain: string,
        command: string,
        args?: object,
        timeout: Duration.Duration = agentCallTimeout
      ) => transport.execute(domain, command, args, timeout)

      const ping = Effect.fn("GuestAgent.ping")(function* (domain: string) {
        yield* run(domain, AgentCommand.Ping, undefined, pingTimeout)
      })

      const waitForAgent = Effect.fn("GuestAgent.waitForAgent")(function* (
        domain: string,
        maxWait: Duration.Duration
      ) {
        let lastError: AgentError | undefined
        const answered = yield* ping(domain).pipe(
          Effect.tapError((error) => Effect.sync(() => (lastError = error))),
          Effect.retry({ schedule: agentWaitSchedule, while: isNotYetConnected }),
          Effect.timeoutOption(maxWait)
        )
        if (Option.isSome(answered)) return
        const last = lastError?._tag === "AgentNotConnected" ? lastError.detail : lastError?.message
        const reason = last === undefined ? "" : `; last error: ${last}`
        return yield* new AgentNotConnected({
          domain,
          command: AgentCommand.Ping,
          detail: `no answer within ${Duration.format(maxWait)}${reason}`
        })
      })

      const info = Effect.fn("GuestAgent.info")(function* (domain: string) {
        const value = yield* run(domain, AgentCommand.Info)
        return yield* decodeReply(GuestInfoReply, domain, AgentCommand.Info)(value)
      })

      const exec = Effect.fn("GuestAgent.exec")(function* (domain: string, request: ExecRequest) {
        const args: GuestExecArguments = {
          path: request.path,
          arg: request.args ?? [],
          ...(request.env === undefined ? {} : { env: request.env }),
          ...(request.input === undefined || request.input.length === 0
            ? {}
            : { "input-data": Buffer.from(request.input).toString("base64") }),
          "capture-output": true
        }
        const requestBytes = Buffer.byteLength(
          JSON.stringify({ execute: AgentCommand.Exec, arguments: args })
        )
        const maxBytes = maxRequestBytes(transport.kind)
        if (requestBytes > maxBytes) {
          return yield* new ExecRequestTooLarge({
            domain,
            transport: transport.kind,
            inputBytes: request.input?.length ?? 0,
            requestBytes,
            maxBytes
          })
        }
        const value = yield* run(domain, AgentCommand.Exec, args)
        const reply = yield* decodeReply(GuestExecReply, domain, AgentCommand.Exec)(value)
        yield* Effect.logDebug(`guest-exec started ${request.path} as pid ${reply.pid}`)
        return reply.pid
      })

      const execStatus = Effect.fn("GuestAgent.execStatus")(function* (
        domain: string,
        pid: number
      ) {
        const value = yield* run(domain, AgentCommand.ExecStatus, { pid })
        return yield* decodeReply(GuestExecStatusReply, domain, AgentCommand.ExecStatus)(value)
      })

      const awaitExit = Effect.fn("GuestAgent.awaitExit")(function* (domain: string, pid: number) {
        const status = yield* execStatus(domain, pid).pipe(
          Effect.repeat({ schedule: execPollSchedule, until: (reply) => reply.exited })
        )
        return {
          pid,
          exitCode: status.exitcode,
          signal: status.signal,
          stdout: fromBase64(status["out-data"]),
          stderr: fromBase64(status["err-data"]),
          stdoutTruncated: status["out-truncated"] === true,
          stderrTruncated: status["err-truncated"] === true
        } satisfies ExecOutcome
      })

      const readFileChunks = <E>(
        domain: string,
        path: string,
        onChunk: (chunk: Uint8Array) => Effect.Effect<void, E>
      ): Effect.Effect<void, AgentError | E> => {
        const open = run(domain, AgentCommand.FileOpen, { path, mode: "r" }).pipe(
          Effect.flatMap(decodeReply(GuestFileOpenReply, domain, AgentCommand.FileOpen))
        )
        const close = (handle: number) =>
          run(domain, AgentCommand.FileClose, { handle }).pipe(
            Effect.catch((error) =>
              Effect.logWarning(`cannot close ${path} in domain ${domain}: ${error.message}`)
            )
          )
        const readAll = (handle: number) =>
          Effect.gen(function* () {
            while (true) {
              const value = yield* run(domain, AgentCommand.FileRead, {
                handle,
                count: fileReadChunkBytes
              })
              const reply = yield* decodeReply(
                GuestFileReadReply,
                domain,
                AgentCommand.FileRead
              )(value)
              const chunk = fromBase64(reply["buf-b64"])
              if (chunk.length > 0) yield* onChunk(chunk)
              if (reply.eof || chunk.length === 0) return
            }
          })
        return Effect.acquireUseRelease(open, readAll, close).pipe(
          Effect.withSpan("GuestAgent.readFileChunks")
        )
      }

      const readFile = Effect.fn("GuestAgent.readFile")(function* (
        domain: string,
        path: string,
        options: { readonly maxBytes?: number } = {}
      ) {
        const maxBytes = options.maxBytes ?? 64 * 1024 * 1024
        const chunks: Array<Uint8Array> = []
        let total = 0
        yield* readFileChunks(domain, path, (chunk) => {
          total += chunk.length
          if (total > maxBytes)
            return Effect.fail(new GuestFileTooLarge({ domain, path, maxBytes }))
          chunks.push(chunk)
          return Effect.void
        })
        return Buffer.concat(chunks)
      })

      const shutdown = Effect.fn("GuestAgent.shutdown")(function* (
        domain: string,
        mode: GuestShutdownMode = "powerdown"
      ) {
        yield* run(domain, AgentCommand.Shutdown, { mode }).pipe(
          // The agent sends no reply when it accepts: it stops with the guest, and libvirt
          // (9.0) then reports "Guest agent disappeared while executing command".
          Effect.catchIf(
            (error) => error._tag === "AgentNotConnected" && /disappeared/i.test(error.detail),
            () => Effect.void
          )
        )
      })

      return GuestAgent.of({
        ping,
        waitForAgent,
        info,
        exec,
        execStatus,
        awaitExit,
        readFile,
        readFileChunks,
        shutdown
      })
    })
  )
}
