import { constants as osConstants } from "node:os"
import { Context, Data, Duration, Effect, Layer, Option, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { ExitCode } from "../domain/ExitCode.ts"

/** The captured result of a finished command. */
export interface ExecResult {
  readonly exitCode: number
  readonly stdout: Uint8Array
  readonly stderr: string
  readonly text: string
}

export interface ExecOptions {
  /** Bytes or text written to the command's standard input, which is then closed. */
  readonly stdin?: Uint8Array | string
  readonly cwd?: string
  readonly env?: Record<string, string>
  /** Stops the command with SIGTERM, then SIGKILL, after this long. */
  readonly timeout?: Duration.Input
  /** Returns a non-zero exit status as a result instead of failing. */
  readonly allowFailure?: boolean
  /** The exit code to report when this command fails (an image tool, libvirt, ...). */
  readonly failureExitCode?: number
}

const stderrTailLength = 2000

/** Keeps the end of a command's stderr, where tools print the reason they failed. */
export const tail = (text: string, length = stderrTailLength): string => {
  const trimmed = text.trim()
  return trimmed.length <= length ? trimmed : `...${trimmed.slice(-length)}`
}

const quoteArg = (arg: string): string => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : JSON.stringify(arg))

/** Renders argv for messages and debug logs; never used to run anything. */
export const renderArgv = (argv: ReadonlyArray<string>): string => argv.map(quoteArg).join(" ")

/** A command exited with a non-zero `status`; `exitCode` is the one vm-runner then exits with. */
export class CommandFailed extends Data.TaggedError("CommandFailed")<{
  readonly argv: ReadonlyArray<string>
  readonly status: number
  readonly stderr: string
  readonly exitCode: number
}> {
  override get message(): string {
    const reason = this.stderr === "" ? "(no error output)" : this.stderr
    return `command failed with exit status ${this.status}: ${renderArgv(this.argv)}\n${reason}`
  }
}

export class CommandTimedOut extends Data.TaggedError("CommandTimedOut")<{
  readonly argv: ReadonlyArray<string>
  readonly timeout: Duration.Duration
}> {
  readonly exitCode = ExitCode.Environment
  override get message(): string {
    return `command timed out after ${Duration.format(this.timeout)}: ${renderArgv(this.argv)}`
  }
}

export class CommandNotFound extends Data.TaggedError("CommandNotFound")<{
  readonly command: string
  readonly detail: string
}> {
  readonly exitCode = ExitCode.Environment
  override get message(): string {
    return `cannot run ${this.command}: ${this.detail}. Install it, or check PATH`
  }
}

export type ExecError = CommandFailed | CommandTimedOut | CommandNotFound

const collect = (stream: Stream.Stream<Uint8Array, unknown>) =>
  stream.pipe(
    Stream.runFold(
      () => [] as Array<Uint8Array>,
      (chunks, chunk) => {
        chunks.push(chunk)
        return chunks
      }
    ),
    Effect.map((chunks) => Buffer.concat(chunks)),
    Effect.orElseSucceed(() => Buffer.alloc(0))
  )

/**
 * Turns "the child was killed by a signal" into the status a shell reports, 128 + the signal
 * number, so callers handle it like any other failure exit.
 */
const signalStatus = (error: { readonly message: string; readonly cause?: unknown }) => {
  const name = /signal: '(SIG[A-Z0-9]+)'/.exec(`${error.message} ${String(error.cause)}`)?.[1]
  const number = name === undefined ? undefined : osConstants.signals[name as NodeJS.Signals]
  return Effect.succeed(number === undefined ? 255 : 128 + number)
}

/** Runs external programs from argv arrays, never through a shell. */
export class Exec extends Context.Service<
  Exec,
  {
    run(
      argv: ReadonlyArray<string>,
      options?: ExecOptions
    ): Effect.Effect<ExecResult, CommandFailed | CommandTimedOut | CommandNotFound>
  }
>()("vm-runner/process/Exec") {
  static readonly layer = Layer.effect(
    Exec,
    Effect.gen(function* () {
      const spawner = yield* ChildProcessSpawner.ChildProcessSpawner

      const runOnce = (argv: ReadonlyArray<string>, options: ExecOptions) =>
        Effect.gen(function* () {
          const [command, ...args] = argv
          if (command === undefined) return yield* Effect.die(new Error("empty argv"))
          const stdin =
            options.stdin === undefined
              ? ("ignore" as const)
              : Stream.make(
                  typeof options.stdin === "string"
                    ? new TextEncoder().encode(options.stdin)
                    : options.stdin
                )
          const handle = yield* spawner
            .spawn(
              ChildProcess.make(command, args, {
                stdin,
                ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
                ...(options.env === undefined ? {} : { env: options.env, extendEnv: true }),
                killSignal: "SIGTERM",
                forceKillAfter: "2 seconds"
              })
            )
            .pipe(
              Effect.mapError(
                (cause) => new CommandNotFound({ command, detail: cause.message ?? String(cause) })
              )
            )
          const [stdout, stderr, exitCode] = yield* Effect.all(
            [
              collect(handle.stdout),
              collect(handle.stderr),
              handle.exitCode.pipe(Effect.catch(signalStatus))
            ],
            { concurrency: "unbounded" }
          )
          return { exitCode: Number(exitCode), stdout, stderr: stderr.toString("utf8") }
        }).pipe(Effect.scoped)

      const run = Effect.fn("Exec.run")(function* (
        argv: ReadonlyArray<string>,
        options: ExecOptions = {}
      ) {
        yield* Effect.logDebug(`running: ${renderArgv(argv)}`)
        const attempt = runOnce(argv, options)
        const result =
          options.timeout === undefined
            ? yield* attempt
            : yield* attempt.pipe(
                Effect.timeoutOption(options.timeout),
                Effect.flatMap(
                  Option.match({
                    onNone: () =>
                      Effect.fail(
                        new CommandTimedOut({
                          argv,
                          timeout: Duration.fromInputUnsafe(options.timeout!)
                        })
                      ),
                    onSome: Effect.succeed
                  })
                )
              )
        if (result.exitCode !== 0 && options.allowFailure !== true) {
          return yield* new CommandFailed({
            argv,
            status: result.exitCode,
            stderr: tail(result.stderr),
            exitCode: options.failureExitCode ?? ExitCode.Environment
          })
        }
        return { ...result, text: Buffer.from(result.stdout).toString("utf8") }
      })

      return Exec.of({ run })
    })
  )
}
