import { randomBytes } from "node:crypto"
import { Data, Duration, Effect, Option, Result, Stdio, Stream } from "effect"
import { GuestExecExit } from "../domain/ExitCode.ts"
import { AgentMaxOutputBytes } from "./AgentProtocol.ts"
import { maxRequestBytes } from "./AgentTransport.ts"
import {
  type ExecOutcome,
  type ExecRequest,
  GuestAgent,
  type GuestAgentError
} from "./GuestAgent.ts"

/** `guest-exec [--wait[=SECONDS]] [--timeout SECONDS] [--domain NAME] [--] COMMAND [ARG...]` */
export interface GuestExecArgs {
  /** The command and its arguments, never empty unless `help` is set. */
  readonly command: ReadonlyArray<string>
  /** How long to wait for the agent to connect; undefined means not at all. */
  readonly wait: Duration.Duration | undefined
  /** How long the command may run; undefined means no limit. */
  readonly timeout: Duration.Duration | undefined
  /** The domain named with `--domain`; undefined lets the caller choose. */
  readonly domain: string | undefined
  /** `--spool`: collect output in guest files, for output beyond libvirt's message limit. */
  readonly spool: boolean
  readonly help: boolean
}

/** `--wait` without a value waits this long for the agent. */
export const defaultAgentWait = Duration.seconds(60)

export const guestExecUsage = `usage: guest-exec [options] [--] COMMAND [ARG...]

Runs COMMAND in the guest through the QEMU guest agent and exits with its exit status.
One argument that is not a plain word runs as a /bin/sh -c command line; several arguments
run COMMAND directly. Options end at COMMAND, so its own options need no "--". Standard
input, when it is not a terminal, is passed to COMMAND.

Options:
  --wait[=SECONDS]   wait for the VM to start and its guest agent to connect (default 60 s)
  --timeout SECONDS  send COMMAND SIGTERM after SECONDS and exit 124 (default: no limit)
  --domain NAME      the libvirt domain to run in (default: GUEST_NAME, or the only VM here)
  --spool            collect output in files in the guest's /tmp, for more than about 3 MiB
  -h, --help         show this help

Exit status: the command's own; 128+N when signal N killed it; 124 when --timeout expired;
125 when guest-exec failed; 127 when the guest agent is not connected.`

/** The guest-exec command line is invalid. */
export class GuestExecUsageError extends Data.TaggedError("GuestExecUsageError")<{
  readonly detail: string
}> {
  readonly exitCode = GuestExecExit.Failed
  override get message(): string {
    return `${this.detail}\nRun guest-exec --help for usage.`
  }
}

/** The command ran longer than `--timeout`. */
export class GuestExecTimedOut extends Data.TaggedError("GuestExecTimedOut")<{
  readonly domain: string
  readonly command: ReadonlyArray<string>
  readonly pid: number
  readonly timeout: Duration.Duration
  /** Whether SIGTERM reached the command; when not, it may still run in the guest. */
  readonly terminated: boolean
}> {
  readonly exitCode = GuestExecExit.Timeout
  override get message(): string {
    const after = this.terminated ? "it was sent SIGTERM" : "it may still be running in the guest"
    return (
      `the command ${JSON.stringify(this.command.join(" "))} (pid ${this.pid} in domain ` +
      `${this.domain}) did not finish within ${Duration.format(this.timeout)}, so ${after}. ` +
      "Raise --timeout if it needs longer"
    )
  }
}

/** The agent reported the command as exited, but with neither an exit code nor a signal. */
export class GuestExitStatusMissing extends Data.TaggedError("GuestExitStatusMissing")<{
  readonly domain: string
  readonly pid: number
}> {
  readonly exitCode = GuestExecExit.Failed
  override get message(): string {
    return (
      `the guest agent of domain ${this.domain} reported pid ${this.pid} as exited without ` +
      "an exit code or signal, so its status is unknown"
    )
  }
}

/** Our standard input could not be passed to the command. */
export class GuestExecInputFailed extends Data.TaggedError("GuestExecInputFailed")<{
  readonly detail: string
}> {
  readonly exitCode = GuestExecExit.Failed
  override get message(): string {
    return `cannot pass standard input to the guest command: ${this.detail}`
  }
}

/** Writing the command's output to our own stdout or stderr failed. */
export class GuestExecOutputFailed extends Data.TaggedError("GuestExecOutputFailed")<{
  readonly stream: "stdout" | "stderr"
  readonly detail: string
}> {
  readonly exitCode = GuestExecExit.Failed
  override get message(): string {
    return `cannot write the command's output to ${this.stream}: ${this.detail}`
  }
}

export type GuestExecError =
  | GuestAgentError
  | GuestExecUsageError
  | GuestExecTimedOut
  | GuestExitStatusMissing
  | GuestExecInputFailed
  | GuestExecOutputFailed

// ---------------------------------------------------------------------------------------------
// Command line

const parseSeconds = (option: string, text: string): Result.Result<Duration.Duration, string> => {
  const seconds = /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN
  if (!(seconds > 0)) {
    return Result.fail(`${option} needs a positive number of seconds, got "${text}" (e.g. 30)`)
  }
  return Result.succeed(Duration.millis(Math.round(seconds * 1000)))
}

/**
 * Parses guest-exec's arguments. Options are read only up to the first argument that is not an
 * option (or up to `--`), so `guest-exec ls -la /tmp` passes `-la` to `ls`.
 */
export const parseGuestExecArgs = (
  argv: ReadonlyArray<string>
): Result.Result<GuestExecArgs, GuestExecUsageError> => {
  let wait: Duration.Duration | undefined
  let timeout: Duration.Duration | undefined
  let domain: string | undefined
  let spool = false
  let index = 0
  const usage = (detail: string) => Result.fail(new GuestExecUsageError({ detail }))

  while (index < argv.length) {
    const arg = argv[index]!
    if (arg === "--") {
      index++
      break
    }
    if (!arg.startsWith("-") || arg === "-") break
    const equals = arg.indexOf("=")
    const name = equals === -1 ? arg : arg.slice(0, equals)
    const inline = equals === -1 ? undefined : arg.slice(equals + 1)
    index++

    if (name === "-h" || name === "--help") {
      return Result.succeed({ command: [], wait, timeout, domain, spool, help: true })
    }
    if (name === "--spool" && inline === undefined) {
      spool = true
      continue
    }
    if (name === "--wait") {
      // A bare number after --wait is its value: no guest command is named by digits alone.
      const next = argv[index]
      const separate = inline === undefined && next !== undefined && /^\d+(\.\d+)?$/.test(next)
      const text = inline ?? (separate ? next : undefined)
      if (separate) index++
      if (text === undefined) {
        wait = defaultAgentWait
        continue
      }
      const parsed = parseSeconds("--wait", text)
      if (Result.isFailure(parsed)) return usage(parsed.failure)
      wait = parsed.success
      continue
    }
    if (name === "--timeout" || name === "--domain") {
      const value = inline ?? argv[index]
      if (inline === undefined) index++
      if (value === undefined || value === "") return usage(`${name} needs a value`)
      if (name === "--domain") {
        domain = value
        continue
      }
      const parsed = parseSeconds("--timeout", value)
      if (Result.isFailure(parsed)) return usage(parsed.failure)
      timeout = parsed.success
      continue
    }
    return usage(
      `unknown option ${JSON.stringify(arg)}; to run a command whose name starts with "-", ` +
        'put "--" before it'
    )
  }

  const command = argv.slice(index)
  if (command.length === 0) return usage("missing COMMAND")
  return Result.succeed({ command, wait, timeout, domain, spool, help: false })
}

/** Characters that never need a shell: a word made only of them means the same either way. */
const plainWord = /^[A-Za-z0-9_@%+,./:-]+$/

/**
 * Maps the command words to what the agent starts. Several words run directly, and so does one
 * plain word. Any other single word is a command line for `/bin/sh -c`, so that `"ls -l"`,
 * `"a|b"` and `'echo $HOME'` behave as they would when typed into a shell.
 *
 * NOTE: a guest without /bin/sh (Windows) can run only the forms that start directly.
 */
export const planGuestCommand = (
  command: ReadonlyArray<string>
): { readonly path: string; readonly args: ReadonlyArray<string> } => {
  const [first, ...rest] = command
  if (first === undefined) return { path: "/bin/sh", args: ["-c", ""] }
  if (rest.length === 0 && !plainWord.test(first)) return { path: "/bin/sh", args: ["-c", first] }
  return { path: first, args: rest }
}

/** Largest exit status a process can report to its parent on POSIX. */
const maxExitStatus = 255

/**
 * The exit status for an outcome: the guest's exit code, or 128 + N for signal N. An exit code
 * outside 0-255 (Windows reports 32-bit codes) becomes 255 with a note.
 */
export const guestExitStatus = (
  outcome: Pick<ExecOutcome, "exitCode" | "signal">
): { readonly status: number; readonly note?: string } | undefined => {
  if (outcome.exitCode !== undefined) {
    if (outcome.exitCode >= 0 && outcome.exitCode <= maxExitStatus) {
      return { status: outcome.exitCode }
    }
    return {
      status: maxExitStatus,
      note: `the command exited with ${outcome.exitCode}, outside 0-255; exiting with 255`
    }
  }
  if (outcome.signal !== undefined) return { status: GuestExecExit.SignalBase + outcome.signal }
  return undefined
}

// ---------------------------------------------------------------------------------------------
// Running

export interface GuestExecOptions {
  readonly domain: string
  readonly command: ReadonlyArray<string>
  /** Wait this long for the agent to connect before running the command. */
  readonly wait?: Duration.Duration | undefined
  /** Give up on the command after this long, send it SIGTERM, and exit 124. */
  readonly timeout?: Duration.Duration | undefined
  /**
   * The source of the command's stdin: `auto` (the default) forwards our stdin when it is not a
   * terminal, `forward` always forwards it, and `none` gives the command /dev/null.
   */
  readonly stdin?: "auto" | "forward" | "none"
  /**
   * The way output comes back. `capture` (the default) has the agent collect it into its reply,
   * which keeps at most 16 MiB per stream, and through libvirt about 3 MiB for both together.
   * `spool` makes the command write its output to two files in the guest's /tmp, which are read
   * in 2 MiB chunks and then removed. It has no size limit, costs at least eight more agent
   * round trips, and needs /bin/sh in the guest.
   */
  readonly output?: "capture" | "spool"
}

/**
 * Most stdin read before giving up: no transport delivers more in one request (see
 * `maxRequestBytes`). Reading stops one byte past it, so endless input does not hang guest-exec.
 */
const maxStdinBytes = maxRequestBytes("libvirt-rpc")

const readStdin = (stdio: Stdio.Stdio) =>
  Effect.gen(function* () {
    const chunks: Array<Uint8Array> = []
    let total = 0
    yield* Stream.runForEachWhile(stdio.stdin, (chunk) =>
      Effect.sync(() => {
        chunks.push(chunk)
        total += chunk.length
        return total <= maxStdinBytes
      })
    ).pipe(
      Effect.mapError(
        (error) => new GuestExecInputFailed({ detail: `cannot read it: ${error.message}` })
      )
    )
    if (total > maxStdinBytes) {
      return yield* new GuestExecInputFailed({
        detail:
          `it is longer than ${maxStdinBytes} bytes, more than the guest agent takes in one ` +
          "request. Copy large input into the guest another way, for example over SSH"
      })
    }
    return Buffer.concat(chunks)
  })

const writeTo = (stdio: Stdio.Stdio, stream: "stdout" | "stderr", bytes: Uint8Array | string) =>
  bytes.length === 0
    ? Effect.void
    : Stream.make(bytes).pipe(
        Stream.run(stream === "stdout" ? stdio.stdout() : stdio.stderr()),
        Effect.mapError((error) => new GuestExecOutputFailed({ stream, detail: error.message }))
      )

const truncationNote = (stream: "stdout" | "stderr") =>
  `guest-exec: the guest agent kept only the first ${AgentMaxOutputBytes / 1024 / 1024} MiB ` +
  `of the command's ${stream}; the rest was dropped\n`

/**
 * Sends SIGTERM to a command that outlived `--timeout` or whose caller was interrupted. The
 * agent has no command for signals, so this runs `kill` in the guest; it returns whether the
 * agent accepted that.
 */
const terminate = (agent: GuestAgent["Service"], domain: string, pid: number) =>
  agent.exec(domain, { path: "kill", args: ["-TERM", String(pid)] }).pipe(
    Effect.flatMap((killer) => agent.awaitExit(domain, killer)),
    Effect.map((outcome) => outcome.exitCode === 0),
    Effect.timeoutOption("10 seconds"),
    Effect.map((accepted) => Option.getOrElse(accepted, () => false)),
    Effect.catch((error) =>
      Effect.logDebug(`cannot stop guest pid ${pid}: ${error.message}`).pipe(Effect.as(false))
    )
  )

const awaitExitWithin = (agent: GuestAgent["Service"], options: GuestExecOptions, pid: number) => {
  const { domain, timeout } = options
  if (timeout === undefined) return agent.awaitExit(domain, pid)
  return agent.awaitExit(domain, pid).pipe(
    Effect.timeoutOption(timeout),
    Effect.flatMap(
      Option.match({
        onSome: Effect.succeed,
        onNone: () =>
          terminate(agent, domain, pid).pipe(
            Effect.flatMap((terminated) =>
              Effect.fail(
                new GuestExecTimedOut({
                  domain,
                  command: options.command,
                  pid,
                  timeout,
                  terminated
                })
              )
            )
          )
      })
    )
  )
}

/** Runs the command with its output collected by the agent, and writes that output. */
const runCaptured = (
  agent: GuestAgent["Service"],
  stdio: Stdio.Stdio,
  options: GuestExecOptions,
  request: ExecRequest
) =>
  Effect.gen(function* () {
    const pid = yield* agent.exec(options.domain, request)
    const outcome = yield* awaitExitWithin(agent, options, pid).pipe(
      // Interrupted by the caller (SIGINT, SIGTERM): stop the command too.
      Effect.onInterrupt(() => terminate(agent, options.domain, pid))
    )
    // The agent returns each stream whole when the command exits, so their interleaving is lost.
    yield* writeTo(stdio, "stdout", outcome.stdout)
    yield* writeTo(stdio, "stderr", outcome.stderr)
    if (outcome.stdoutTruncated) yield* writeTo(stdio, "stderr", truncationNote("stdout"))
    if (outcome.stderrTruncated) yield* writeTo(stdio, "stderr", truncationNote("stderr"))
    return outcome
  })

/**
 * Redirects the command's output into the files named by `$1` and `$2`, then replaces the shell
 * with the command, so that its pid, exit status and signals are the command's own. `set -C`
 * refuses to write through a file that already exists, such as a planted symlink.
 */
const spoolScript = 'set -C; umask 077; o=$1 e=$2; shift 2; exec "$@" >"$o" 2>"$e"'

/** Removes spool files. A failure only leaves two files in the guest's /tmp, so it is logged. */
const removeGuestFiles = (
  agent: GuestAgent["Service"],
  domain: string,
  paths: ReadonlyArray<string>
) =>
  agent.exec(domain, { path: "rm", args: ["-f", "--", ...paths] }).pipe(
    Effect.flatMap((pid) => agent.awaitExit(domain, pid)),
    Effect.timeoutOption("10 seconds"),
    Effect.asVoid,
    Effect.catch((error) =>
      Effect.logWarning(`cannot remove ${paths.join(" ")} in domain ${domain}: ${error.message}`)
    )
  )

/** Runs the command with its output spooled to guest files, and streams those files out. */
const runSpooled = (
  agent: GuestAgent["Service"],
  stdio: Stdio.Stdio,
  options: GuestExecOptions,
  request: ExecRequest
) => {
  const { domain } = options
  const base = `/tmp/vm-runner-guest-exec-${randomBytes(8).toString("hex")}`
  const files = { stdout: `${base}.out`, stderr: `${base}.err` } as const
  const wrapped: ExecRequest = {
    ...request,
    path: "/bin/sh",
    args: [
      "-c",
      spoolScript,
      "sh",
      files.stdout,
      files.stderr,
      request.path,
      ...(request.args ?? [])
    ]
  }

  const run = Effect.gen(function* () {
    const pid = yield* agent.exec(domain, wrapped)
    const outcome = yield* awaitExitWithin(agent, options, pid).pipe(
      Effect.onInterrupt(() => terminate(agent, domain, pid))
    )
    // Only the shell writes here, when it cannot create a file or start the command.
    yield* writeTo(stdio, "stderr", outcome.stderr)
    for (const stream of ["stdout", "stderr"] as const) {
      yield* agent
        .readFileChunks(domain, files[stream], (chunk) => writeTo(stdio, stream, chunk))
        .pipe(
          // A shell that failed before creating the file has written the reason to its stderr.
          Effect.catchIf(
            (error) => error._tag === "AgentCommandFailed" && outcome.exitCode !== 0,
            (error) => Effect.logDebug(`no ${stream} file from guest pid ${pid}: ${error.message}`)
          )
        )
    }
    return outcome
  })
  return run.pipe(Effect.ensuring(removeGuestFiles(agent, domain, [files.stdout, files.stderr])))
}

/**
 * Runs one command in the guest, writes its stdout and stderr as raw bytes, and returns the exit
 * status guest-exec should exit with. Notes about truncated output go to stderr.
 */
export const runGuestExec = Effect.fn("GuestExec.run")(function* (options: GuestExecOptions) {
  const agent = yield* GuestAgent
  const stdio = yield* Stdio.Stdio
  const { domain } = options
  const plan = planGuestCommand(options.command)

  const mode = options.stdin ?? "auto"
  const forward = mode === "forward" || (mode === "auto" && !(yield* stdio.stdinIsTerminal))
  const input = forward ? yield* readStdin(stdio) : undefined

  if (options.wait !== undefined) yield* agent.waitForAgent(domain, options.wait)

  const request: ExecRequest = {
    path: plan.path,
    args: plan.args,
    ...(input === undefined ? {} : { input })
  }
  const outcome =
    options.output === "spool"
      ? yield* runSpooled(agent, stdio, options, request)
      : yield* runCaptured(agent, stdio, options, request)

  const status = guestExitStatus(outcome)
  if (status === undefined) return yield* new GuestExitStatusMissing({ domain, pid: outcome.pid })
  if (status.note !== undefined) yield* writeTo(stdio, "stderr", `guest-exec: ${status.note}\n`)
  return status.status
})
