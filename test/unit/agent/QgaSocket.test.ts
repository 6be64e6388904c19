import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Duration, Effect, Exit, Layer, Sink, Stdio, Stream } from "effect"
import { AgentTransport } from "../../../src/agent/AgentTransport.ts"
import { GuestAgent } from "../../../src/agent/GuestAgent.ts"
import { type GuestExecOptions, runGuestExec } from "../../../src/agent/GuestExec.ts"
import { type FakeAgent, type FakeAgentOptions, startFakeAgent } from "./FakeAgent.ts"

let dir: string
const agents: Array<FakeAgent> = []

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "vm-runner-qga-"))
})

afterAll(async () => {
  for (const agent of agents) await agent.close()
  rmSync(dir, { recursive: true, force: true })
})

const fakeAgent = async (options: FakeAgentOptions = {}) => {
  const agent = await startFakeAgent(dir, options)
  agents.push(agent)
  return agent
}

interface Outcome {
  readonly exit: Exit.Exit<number, unknown>
  readonly stdout: Buffer
  readonly stderr: string
}

const guestExec = async (
  agent: FakeAgent,
  options: Partial<GuestExecOptions>,
  stdin?: Uint8Array
): Promise<Outcome> => {
  const stdout: Array<Uint8Array> = []
  const stderr: Array<Uint8Array> = []
  const record = (into: Array<Uint8Array>) => (chunk: string | Uint8Array) =>
    Effect.sync(() => {
      into.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk)
    })
  const collect = (into: Array<Uint8Array>) => () => Sink.forEach(record(into))
  const layer = Layer.mergeAll(
    GuestAgent.layer.pipe(Layer.provide(AgentTransport.layerQgaSocket(agent.path))),
    Stdio.layerTest({
      stdout: collect(stdout),
      stderr: collect(stderr),
      stdin: stdin === undefined ? Stream.empty : Stream.make(stdin),
      stdinIsTerminal: Effect.succeed(stdin === undefined)
    })
  )
  const exit = await Effect.runPromiseExit(
    runGuestExec({ domain: "fake", command: ["true"], ...options }).pipe(Effect.provide(layer))
  )
  return { exit, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString() }
}

const statusOf = (outcome: Outcome): number => {
  if (Exit.isFailure(outcome.exit)) throw new Error(`failed: ${String(outcome.exit.cause)}`)
  return outcome.exit.value
}

const failureOf = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
  if (failure === undefined) throw new Error(`no typed failure: ${String(exit.cause)}`)
  return failure.error as { _tag: string; exitCode: number; message: string }
}

/** Runs `use` against the socket transport, scoped so the connection closes afterwards. */
const withTransport = <A, E>(
  path: string,
  use: (transport: AgentTransport["Service"]) => Effect.Effect<A, E>
) =>
  Effect.runPromiseExit(
    Effect.gen(function* () {
      return yield* use(yield* AgentTransport)
    }).pipe(Effect.provide(AgentTransport.layerQgaSocket(path)))
  )

describe("guest-exec over the agent socket", () => {
  test("true exits 0 after a sync", async () => {
    const agent = await fakeAgent()
    expect(statusOf(await guestExec(agent, { command: ["true"] }))).toBe(0)
    expect(agent.requests[0]?.execute).toBe("guest-sync-delimited")
    expect(agent.requests[1]?.execute).toBe("guest-exec")
  })

  test("exit 42", async () => {
    const agent = await fakeAgent()
    expect(statusOf(await guestExec(agent, { command: ["exit 42"] }))).toBe(42)
  })

  test("stdout and stderr stay separate", async () => {
    const agent = await fakeAgent()
    const outcome = await guestExec(agent, { command: ["echo out; echo err >&2; exit 3"] })
    expect(statusOf(outcome)).toBe(3)
    expect(outcome.stdout.toString()).toBe("out\n")
    expect(outcome.stderr).toBe("err\n")
  })

  test("binary output is passed unchanged", async () => {
    const agent = await fakeAgent()
    const outcome = await guestExec(agent, { command: ["printf", "\\377\\000\\376\\n"] })
    expect(statusOf(outcome)).toBe(0)
    expect([...outcome.stdout]).toEqual([0xff, 0x00, 0xfe, 0x0a])
  })

  test("killed by a signal", async () => {
    const agent = await fakeAgent()
    expect(statusOf(await guestExec(agent, { command: ["kill -KILL $$"] }))).toBe(137)
  })

  test("stdin reaches the command", async () => {
    const agent = await fakeAgent()
    const input = Buffer.from([104, 105, 10, 0xff, 0])
    const outcome = await guestExec(agent, { command: ["cat"] }, input)
    expect(statusOf(outcome)).toBe(0)
    expect([...outcome.stdout]).toEqual([...input])
  })

  test("truncated output is reported", async () => {
    const agent = await fakeAgent({ maxOutputBytes: 1000 })
    const outcome = await guestExec(agent, { command: ["head -c 5000 /dev/zero"] })
    expect(statusOf(outcome)).toBe(0)
    expect(outcome.stdout.length).toBe(1000)
    expect(outcome.stderr).toContain("of the command's stdout; the rest was dropped")
  })

  test("5 MB of output in small pieces", async () => {
    const agent = await fakeAgent({ chunkBytes: 65536 })
    const outcome = await guestExec(agent, { command: ["head -c 5000000 /dev/zero | tr '\\0' x"] })
    expect(statusOf(outcome)).toBe(0)
    expect(outcome.stdout.length).toBe(5_000_000)
    expect(outcome.stdout.every((byte) => byte === 0x78)).toBe(true)
  })

  test("replies split into 3-byte pieces", async () => {
    const agent = await fakeAgent({ chunkBytes: 3 })
    const outcome = await guestExec(agent, { command: ["echo hello; exit 7"] })
    expect(statusOf(outcome)).toBe(7)
    expect(outcome.stdout.toString()).toBe("hello\n")
  })

  test("timeout sends SIGTERM and exits 124", async () => {
    const agent = await fakeAgent()
    const outcome = await guestExec(agent, {
      command: ["sleep", "30"],
      timeout: Duration.millis(300)
    })
    const error = failureOf(outcome.exit)
    expect(error._tag).toBe("GuestExecTimedOut")
    expect(error.exitCode).toBe(124)
    expect(agent.signalled.map((entry) => entry.signal)).toEqual(["SIGTERM"])
  })
})

describe("guest-exec with spooled output", () => {
  const spoolFiles = (agent: FakeAgent): [string, string] => {
    const exec = agent.requests.find((request) => request.execute === "guest-exec")
    const args = (exec?.arguments?.arg ?? []) as Array<string>
    return [args[3]!, args[4]!]
  }

  test("5 MB of output, files removed", async () => {
    const agent = await fakeAgent()
    const outcome = await guestExec(agent, {
      command: ["head -c 5000000 /dev/zero | tr '\\0' y; echo err >&2; exit 3"],
      output: "spool"
    })
    expect(statusOf(outcome)).toBe(3)
    expect(outcome.stdout.length).toBe(5_000_000)
    expect(outcome.stdout.every((byte) => byte === 0x79)).toBe(true)
    expect(outcome.stderr).toBe("err\n")
    const [out, err] = spoolFiles(agent)
    expect(out).toMatch(/^\/tmp\/vm-runner-guest-exec-[0-9a-f]{16}\.out$/)
    expect(existsSync(out)).toBe(false)
    expect(existsSync(err)).toBe(false)
    const removal = agent.requests.filter((request) => request.execute === "guest-exec").at(-1)
    expect(removal?.arguments).toMatchObject({ path: "rm", arg: ["-f", "--", out, err] })
  })

  test("stdin and a signal", async () => {
    const agent = await fakeAgent()
    const outcome = await guestExec(
      agent,
      { command: ["cat; kill -TERM $$"], output: "spool" },
      Buffer.from("piped\n")
    )
    expect(statusOf(outcome)).toBe(143)
    expect(outcome.stdout.toString()).toBe("piped\n")
  })

  test("missing command reports the shell's error", async () => {
    const agent = await fakeAgent()
    const outcome = await guestExec(agent, {
      command: ["no-such-command-for-vm-runner", "x"],
      output: "spool"
    })
    expect(statusOf(outcome)).toBe(127)
    expect(outcome.stderr).toContain("no-such-command-for-vm-runner")
  })
})

describe("agent socket transport", () => {
  test("stale output before the sync is skipped", async () => {
    const stale = Buffer.concat([
      Buffer.from('{"return": {"pid": 1}}\n{"ret'),
      Buffer.from([0xff]),
      Buffer.from('{"return": 1}\n')
    ])
    const agent = await fakeAgent({ staleOutput: stale })
    const exit = await withTransport(agent.path, (transport) =>
      transport.execute("fake", "guest-exec", { path: "true" }, Duration.seconds(5))
    )
    expect(Exit.isSuccess(exit)).toBe(true)
    expect(Exit.isSuccess(exit) ? exit.value : undefined).toEqual({ pid: 4000 })
  })

  test("agent error reply", async () => {
    const agent = await fakeAgent()
    const exit = await withTransport(agent.path, (transport) =>
      transport.execute("fake", "guest-exec-status", { pid: 12345 }, Duration.seconds(5))
    )
    const error = failureOf(exit)
    expect(error._tag).toBe("AgentCommandFailed")
    expect(error.message).toContain("Invalid parameter 'pid'")
  })

  test("missing socket is not connected", async () => {
    const exit = await withTransport(join(dir, "absent.sock"), (transport) =>
      transport.execute("fake", "guest-ping", undefined, Duration.seconds(5))
    )
    const error = failureOf(exit)
    expect(error._tag).toBe("AgentNotConnected")
    expect(error.exitCode).toBe(127)
    expect(error.message).toContain("absent.sock")
  })

  test("disconnect mid-command, then reconnect", async () => {
    const agent = await fakeAgent({ disconnectOn: ["guest-exec-status"] })
    const exit = await withTransport(agent.path, (transport) =>
      Effect.gen(function* () {
        const status = yield* Effect.exit(
          transport.execute("fake", "guest-exec-status", { pid: 1 }, Duration.seconds(5))
        )
        const ping = yield* transport.execute("fake", "guest-ping", undefined, Duration.seconds(5))
        return { status, ping }
      })
    )
    if (Exit.isFailure(exit)) throw new Error(String(exit.cause))
    expect(failureOf(exit.value.status)._tag).toBe("AgentNotConnected")
    expect(failureOf(exit.value.status).message).toContain("connection to")
    expect(exit.value.ping).toEqual({})
    expect(agent.connections()).toBe(2)
  })

  test("silent agent times out, next command resyncs", async () => {
    const agent = await fakeAgent({ ignore: ["guest-ping"] })
    const exit = await withTransport(agent.path, (transport) =>
      Effect.gen(function* () {
        const ping = yield* Effect.exit(
          transport.execute("fake", "guest-ping", undefined, Duration.millis(200))
        )
        const info = yield* transport.execute("fake", "guest-info", undefined, Duration.seconds(5))
        return { ping, info }
      })
    )
    if (Exit.isFailure(exit)) throw new Error(String(exit.cause))
    expect(failureOf(exit.value.ping)._tag).toBe("AgentTimedOut")
    expect(exit.value.info).toMatchObject({ version: "fake-1.0" })
    expect(agent.connections()).toBe(2)
    const syncs = agent.requests.filter((request) => request.execute === "guest-sync-delimited")
    expect(syncs.length).toBe(2)
  })
})

describe("GuestAgent over the agent socket", () => {
  const agentLayer = (path: string) =>
    GuestAgent.layer.pipe(Layer.provide(AgentTransport.layerQgaSocket(path)))

  test("readFile returns the whole file", async () => {
    const agent = await fakeAgent()
    const content = Buffer.alloc(5 * 1024 * 1024 + 17)
    for (let i = 0; i < content.length; i++) content[i] = (i * 31) % 251
    const path = join(dir, "big.bin")
    writeFileSync(path, content)
    const bytes = await Effect.runPromise(
      GuestAgent.use((guest) => guest.readFile("fake", path)).pipe(
        Effect.provide(agentLayer(agent.path))
      )
    )
    expect(Buffer.from(bytes).equals(content)).toBe(true)
    const reads = agent.requests.filter((request) => request.execute === "guest-file-read")
    expect(reads.length).toBe(4)
    expect(agent.requests.at(-1)?.execute).toBe("guest-file-close")
  })

  test("readFile over the limit fails", async () => {
    const agent = await fakeAgent()
    const path = join(dir, "limit.bin")
    writeFileSync(path, Buffer.alloc(3 * 1024 * 1024))
    const exit = await Effect.runPromiseExit(
      GuestAgent.use((guest) => guest.readFile("fake", path, { maxBytes: 1024 * 1024 })).pipe(
        Effect.provide(agentLayer(agent.path))
      )
    )
    expect(failureOf(exit)._tag).toBe("GuestFileTooLarge")
    expect(agent.requests.at(-1)?.execute).toBe("guest-file-close")
  })

  test("shutdown counts the closed channel as accepted", async () => {
    const agent = await fakeAgent()
    const exit = await Effect.runPromiseExit(
      GuestAgent.use((guest) => guest.shutdown("fake")).pipe(Effect.provide(agentLayer(agent.path)))
    )
    expect(Exit.isSuccess(exit)).toBe(true)
    expect(agent.requests.at(-1)).toEqual({
      execute: "guest-shutdown",
      arguments: { mode: "powerdown" }
    })
  })

  test("info decodes the reply", async () => {
    const agent = await fakeAgent()
    const info = await Effect.runPromise(
      GuestAgent.use((guest) => guest.info("fake")).pipe(Effect.provide(agentLayer(agent.path)))
    )
    expect(info.version).toBe("fake-1.0")
    expect(info.supported_commands[0]?.name).toBe("guest-exec")
  })
})
