import { describe, expect, test } from "bun:test"
import { Clock, Duration, Effect, Exit, Fiber, Layer, Sink, Stdio, Stream } from "effect"
import { TestClock } from "effect/testing"
import {
  type AgentError,
  AgentNotConnected,
  AgentTransport,
  type TransportKind
} from "../../../src/agent/AgentTransport.ts"
import { GuestAgent } from "../../../src/agent/GuestAgent.ts"
import { type GuestExecOptions, runGuestExec } from "../../../src/agent/GuestExec.ts"

interface Call {
  readonly command: string
  readonly args: Record<string, unknown> | undefined
  readonly at: number
}

/** The status a scripted command ends with, after `pollsUntilExit` queries report it running. */
interface Script {
  readonly final: Record<string, unknown>
  readonly pollsUntilExit?: number
  readonly execError?: AgentError
  /** Pings that fail as "not connected" before one succeeds. */
  readonly pingFailures?: number
  readonly transport?: TransportKind
}

const b64 = (bytes: Uint8Array | string) => Buffer.from(bytes).toString("base64")

/** Builds a transport that plays a scripted agent and records each call with the clock's time. */
const scriptedTransport = (script: Script, calls: Array<Call>) => {
  let polls = 0
  let pings = 0
  return AgentTransport.layerTest(
    (domain, command, args) =>
      Effect.gen(function* () {
        const at = yield* Clock.currentTimeMillis
        calls.push({ command, args: args as Record<string, unknown> | undefined, at })
        switch (command) {
          case "guest-ping":
            if (pings++ < (script.pingFailures ?? 0)) {
              return yield* new AgentNotConnected({ domain, command, detail: "not yet" })
            }
            return {}
          case "guest-exec":
            if (script.execError !== undefined) return yield* script.execError
            return { pid: (args as { path: string }).path === "kill" ? 99 : 7 }
          case "guest-exec-status":
            if ((args as { pid: number }).pid === 99) return { exited: true, exitcode: 0 }
            if (polls++ < (script.pollsUntilExit ?? 0)) return { exited: false }
            return { exited: true, ...script.final }
          default:
            return {}
        }
      }),
    script.transport
  )
}

interface Captured {
  readonly exit: Exit.Exit<number, unknown>
  readonly stdout: Uint8Array
  readonly stderr: string
  readonly calls: ReadonlyArray<Call>
}

const stdioLayer = (
  stdout: Array<Uint8Array>,
  stderr: Array<Uint8Array>,
  stdin: { readonly data?: Uint8Array; readonly terminal?: boolean }
) => {
  const record = (into: Array<Uint8Array>) => (chunk: string | Uint8Array) =>
    Effect.sync(() => {
      into.push(typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk)
    })
  const collect = (into: Array<Uint8Array>) => () => Sink.forEach(record(into))
  return Stdio.layerTest({
    stdout: collect(stdout),
    stderr: collect(stderr),
    stdin: stdin.data === undefined ? Stream.empty : Stream.make(stdin.data),
    stdinIsTerminal: Effect.succeed(stdin.terminal ?? false)
  })
}

/** Runs guest-exec on TestClock, moving the clock 100 ms at a time for up to 60 s. */
const run = async (
  script: Script,
  options: Partial<GuestExecOptions> = {},
  stdin: { readonly data?: Uint8Array; readonly terminal?: boolean } = {}
): Promise<Captured> => {
  const calls: Array<Call> = []
  const stdout: Array<Uint8Array> = []
  const stderr: Array<Uint8Array> = []
  const layer = Layer.mergeAll(
    GuestAgent.layer.pipe(Layer.provide(scriptedTransport(script, calls))),
    stdioLayer(stdout, stderr, stdin),
    TestClock.layer()
  )
  const program = Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(
      runGuestExec({ domain: "vm1", command: ["true"], ...options })
    )
    for (let step = 0; step < 600 && fiber.pollUnsafe() === undefined; step++) {
      yield* TestClock.adjust("100 millis")
    }
    return yield* Fiber.await(fiber)
  })
  const exit = await Effect.runPromise(program.pipe(Effect.provide(layer)))
  return {
    exit,
    stdout: Buffer.concat(stdout),
    stderr: Buffer.concat(stderr).toString("utf8"),
    calls
  }
}

const statusOf = (captured: Captured): number => {
  if (Exit.isFailure(captured.exit)) throw new Error(`failed: ${String(captured.exit.cause)}`)
  return captured.exit.value
}

const errorOf = (captured: Captured): { _tag: string; exitCode: number; message: string } => {
  if (Exit.isSuccess(captured.exit)) throw new Error("expected a failure")
  const failure = captured.exit.cause.reasons.find((reason) => reason._tag === "Fail")
  if (failure === undefined) throw new Error(`no typed failure: ${String(captured.exit.cause)}`)
  return failure.error as { _tag: string; exitCode: number; message: string }
}

describe("runGuestExec", () => {
  test("exit code and separate raw output", async () => {
    const raw = new Uint8Array([0x68, 0x69, 0xff, 0xfe, 0x00, 0x0a])
    const captured = await run({
      final: { exitcode: 42, "out-data": b64(raw), "err-data": b64("warning\n") }
    })
    expect(statusOf(captured)).toBe(42)
    expect([...captured.stdout]).toEqual([...raw])
    expect(captured.stderr).toBe("warning\n")
  })

  test("signal becomes 128 plus N", async () => {
    expect(statusOf(await run({ final: { signal: 9 } }))).toBe(137)
  })

  test("missing exit status is an error", async () => {
    const captured = await run({ final: { "out-data": b64("partial") } })
    const error = errorOf(captured)
    expect(error._tag).toBe("GuestExitStatusMissing")
    expect(error.exitCode).toBe(125)
    expect(new TextDecoder().decode(captured.stdout)).toBe("partial")
  })

  test("truncated output is reported", async () => {
    const captured = await run({
      final: { exitcode: 0, "out-truncated": true, "err-truncated": true }
    })
    expect(statusOf(captured)).toBe(0)
    expect(captured.stderr).toContain("16 MiB of the command's stdout")
    expect(captured.stderr).toContain("16 MiB of the command's stderr")
  })

  test("plain command runs directly", async () => {
    const captured = await run({ final: { exitcode: 0 } }, { command: ["ls", "-la", "/tmp"] })
    const exec = captured.calls.find((call) => call.command === "guest-exec")
    expect(exec?.args?.path).toBe("ls")
    expect(exec?.args?.arg).toEqual(["-la", "/tmp"])
    expect(exec?.args?.["capture-output"]).toBe(true)
  })

  test("command line runs under sh", async () => {
    const captured = await run({ final: { exitcode: 0 } }, { command: ["uname -a"] })
    const exec = captured.calls.find((call) => call.command === "guest-exec")
    expect(exec?.args?.path).toBe("/bin/sh")
    expect(exec?.args?.arg).toEqual(["-c", "uname -a"])
  })

  test("stdin forwarded when not a terminal", async () => {
    const data = new Uint8Array([104, 105, 10, 0xff])
    const captured = await run({ final: { exitcode: 0 } }, {}, { data })
    const exec = captured.calls.find((call) => call.command === "guest-exec")
    expect(exec?.args?.["input-data"]).toBe(b64(data))
  })

  test("stdin from a terminal is not read", async () => {
    const captured = await run(
      { final: { exitcode: 0 } },
      {},
      { data: new Uint8Array([1]), terminal: true }
    )
    const exec = captured.calls.find((call) => call.command === "guest-exec")
    expect(exec?.args?.["input-data"]).toBeUndefined()
  })

  test("stdin none is not read", async () => {
    const captured = await run(
      { final: { exitcode: 0 } },
      { stdin: "none" },
      { data: new Uint8Array([1]) }
    )
    const exec = captured.calls.find((call) => call.command === "guest-exec")
    expect(exec?.args?.["input-data"]).toBeUndefined()
  })

  test("empty stdin sends no input", async () => {
    const captured = await run({ final: { exitcode: 0 } }, {}, { data: new Uint8Array() })
    const exec = captured.calls.find((call) => call.command === "guest-exec")
    expect(exec?.args?.["input-data"]).toBeUndefined()
  })

  test("stdin longer than any request fails early", async () => {
    const data = new Uint8Array(3 * 1024 * 1024 + 10)
    const captured = await run({ final: { exitcode: 0 } }, {}, { data })
    const error = errorOf(captured)
    expect(error._tag).toBe("GuestExecInputFailed")
    expect(error.exitCode).toBe(125)
    expect(captured.calls.some((call) => call.command === "guest-exec")).toBe(false)
  })

  test("stdin over the RPC request limit", async () => {
    const data = new Uint8Array(150 * 1024)
    const captured = await run({ final: { exitcode: 0 } }, {}, { data })
    const error = errorOf(captured)
    expect(error._tag).toBe("ExecRequestTooLarge")
    expect(error.message).toContain("153600 bytes of standard input")
    expect(error.message).toContain("over the 196608 bytes the libvirt-rpc transport")
  })

  test("stdin over the virsh argument limit", async () => {
    const data = new Uint8Array(100_000)
    const viaVirsh = await run({ final: { exitcode: 0 }, transport: "virsh" }, {}, { data })
    expect(errorOf(viaVirsh)._tag).toBe("ExecRequestTooLarge")
    expect(errorOf(viaVirsh).message).toContain("131071 bytes the virsh transport")
    const viaRpc = await run({ final: { exitcode: 0 } }, {}, { data })
    expect(statusOf(viaRpc)).toBe(0)
  })

  test("agent not connected exits 127", async () => {
    const captured = await run({
      final: { exitcode: 0 },
      execError: new AgentNotConnected({
        domain: "vm1",
        command: "guest-exec",
        detail: "QEMU guest agent is not connected"
      })
    })
    const error = errorOf(captured)
    expect(error.exitCode).toBe(127)
    expect(error.message).toContain("domain vm1")
    expect(error.message).toContain("--wait")
  })

  test("wait retries until the agent answers", async () => {
    const captured = await run(
      { final: { exitcode: 3 }, pingFailures: 2 },
      { wait: Duration.seconds(10) }
    )
    expect(statusOf(captured)).toBe(3)
    const commands = captured.calls.map((call) => call.command)
    expect(commands.slice(0, 4)).toEqual(["guest-ping", "guest-ping", "guest-ping", "guest-exec"])
  })

  test("wait gives up with not connected", async () => {
    const captured = await run(
      { final: { exitcode: 0 }, pingFailures: 1000 },
      { wait: Duration.millis(700) }
    )
    const error = errorOf(captured)
    expect(error._tag).toBe("AgentNotConnected")
    expect(error.exitCode).toBe(127)
    expect(error.message).toContain("no answer within")
    expect(captured.calls.some((call) => call.command === "guest-exec")).toBe(false)
  })

  test("timeout exits 124 and stops the command", async () => {
    const captured = await run(
      { final: { exitcode: 0 }, pollsUntilExit: 1_000_000 },
      { command: ["sleep", "100"], timeout: Duration.millis(150) }
    )
    const error = errorOf(captured)
    expect(error._tag).toBe("GuestExecTimedOut")
    expect(error.exitCode).toBe(124)
    expect(error.message).toContain("sent SIGTERM")
    const kill = captured.calls.find(
      (call) => call.command === "guest-exec" && call.args?.path === "kill"
    )
    expect(kill?.args?.arg).toEqual(["-TERM", "7"])
  })
})

describe("interruption", () => {
  test("stops the guest command", async () => {
    const calls: Array<Call> = []
    const layer = Layer.mergeAll(
      GuestAgent.layer.pipe(
        Layer.provide(
          scriptedTransport({ final: { exitcode: 0 }, pollsUntilExit: 1_000_000 }, calls)
        )
      ),
      stdioLayer([], [], { terminal: true }),
      TestClock.layer()
    )
    const program = Effect.gen(function* () {
      const fiber = yield* Effect.forkChild(runGuestExec({ domain: "vm1", command: ["sleep 99"] }))
      yield* TestClock.adjust("1 second")
      yield* Fiber.interrupt(fiber)
    })
    await Effect.runPromise(program.pipe(Effect.provide(layer)))
    const kill = calls.find((call) => call.command === "guest-exec" && call.args?.path === "kill")
    expect(kill?.args?.arg).toEqual(["-TERM", "7"])
  })
})

describe("status polling", () => {
  /** Runs `true` against an agent that reports the exit after `polls` queries; returns the gaps. */
  const pollGaps = async (polls: number, steps: number) => {
    const calls: Array<Call> = []
    const layer = Layer.mergeAll(
      GuestAgent.layer.pipe(
        Layer.provide(scriptedTransport({ final: { exitcode: 0 }, pollsUntilExit: polls }, calls))
      ),
      stdioLayer([], [], { terminal: true }),
      TestClock.layer()
    )
    const program = Effect.gen(function* () {
      const fiber = yield* Effect.forkChild(runGuestExec({ domain: "vm1", command: ["true"] }))
      for (let step = 0; step < steps; step++) yield* TestClock.adjust("10 millis")
      return yield* Fiber.join(fiber)
    })
    const status = await Effect.runPromise(program.pipe(Effect.provide(layer)))
    expect(status).toBe(0)
    const times = calls.filter((call) => call.command === "guest-exec-status").map((c) => c.at)
    expect(times.length).toBe(polls + 1)
    return times.slice(1).map((at, index) => at - times[index]!)
  }

  test("backoff grows from 2 ms to 50 ms", async () => {
    // TestClock wakes each sleeper at its exact deadline, so the gaps are the delays.
    const gaps = await pollGaps(10, 200)
    expect(gaps.map((gap) => Math.round(gap))).toEqual([2, 3, 5, 7, 10, 15, 23, 34, 50, 50])
  })

  test("after 5 seconds, 250 ms", async () => {
    const gaps = await pollGaps(110, 1000)
    expect(Math.max(...gaps.slice(0, 90))).toBe(50)
    expect(gaps.slice(-3)).toEqual([250, 250, 250])
  })
})
