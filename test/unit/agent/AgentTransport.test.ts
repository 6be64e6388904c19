import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Duration, Effect, Exit, Layer } from "effect"
import { AgentTransport, localLibvirtSockets } from "../../../src/agent/AgentTransport.ts"
import {
  CommandTimedOut,
  Exec,
  type ExecOptions,
  type ExecResult
} from "../../../src/process/Exec.ts"
import {
  type AgentAnswer,
  type AgentCall,
  type FakeLibvirtd,
  type FakeLibvirtdOptions,
  startFakeLibvirtd
} from "./FakeLibvirtd.ts"

let dir: string
const daemons: Array<FakeLibvirtd> = []

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "vm-runner-rpc-"))
})

afterAll(async () => {
  for (const daemon of daemons) await daemon.close()
  rmSync(dir, { recursive: true, force: true })
})

const failureOf = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
  if (failure === undefined) throw new Error(`no typed failure: ${String(exit.cause)}`)
  return failure.error as { _tag: string; exitCode: number; message: string } & Record<
    string,
    unknown
  >
}

const successOf = <A>(exit: Exit.Exit<A, unknown>): A => {
  if (Exit.isFailure(exit)) throw new Error(`failed: ${String(exit.cause)}`)
  return exit.value
}

const thirtySeconds = Duration.seconds(30)

// ---------------------------------------------------------------------------------------------
// virsh

interface ExecCall {
  readonly argv: ReadonlyArray<string>
  readonly options: ExecOptions | undefined
}

const fakeExec = (
  calls: Array<ExecCall>,
  answer: (argv: ReadonlyArray<string>) => Effect.Effect<ExecResult, CommandTimedOut>
) =>
  Layer.succeed(
    Exec,
    Exec.of({
      run: (argv, options) => {
        calls.push({ argv, options })
        return answer(argv)
      }
    })
  )

const result = (exitCode: number, stdout: string, stderr = ""): ExecResult => ({
  exitCode,
  stdout: Buffer.from(stdout),
  stderr,
  text: stdout
})

const viaVirsh = (
  answer: (argv: ReadonlyArray<string>) => Effect.Effect<ExecResult, CommandTimedOut>,
  request: { readonly command: string; readonly args?: object } = {
    command: "guest-exec-status",
    args: { pid: 5 }
  }
) => {
  const calls: Array<ExecCall> = []
  const layer = AgentTransport.layerVirsh("qemu:///system").pipe(
    Layer.provide(fakeExec(calls, answer))
  )
  const exit = Effect.runPromiseExit(
    AgentTransport.use((transport) =>
      transport.execute("vm1", request.command, request.args, thirtySeconds)
    ).pipe(Effect.provide(layer))
  )
  return exit.then((value) => ({ exit: value, calls }))
}

describe("virsh transport", () => {
  test("argv and reply", async () => {
    const { exit, calls } = await viaVirsh(() =>
      Effect.succeed(result(0, '{"return":{"exited":false}}\n'))
    )
    expect(successOf(exit)).toEqual({ exited: false })
    expect(calls[0]?.argv).toEqual([
      "virsh",
      "-q",
      "-c",
      "qemu:///system",
      "qemu-agent-command",
      "vm1",
      '{"execute":"guest-exec-status","arguments":{"pid":5}}',
      "--timeout",
      "30"
    ])
    expect(calls[0]?.options?.allowFailure).toBe(true)
  })

  test("command without arguments", async () => {
    const { calls } = await viaVirsh(() => Effect.succeed(result(0, '{"return":{}}')), {
      command: "guest-ping"
    })
    expect(calls[0]?.argv[6]).toBe('{"execute":"guest-ping"}')
  })

  const stderrCases: ReadonlyArray<[string, string, string]> = [
    [
      "error: Guest agent is not responding: QEMU guest agent is not connected\n",
      "AgentNotConnected",
      "QEMU guest agent is not connected"
    ],
    [
      "error: Requested operation is not valid: domain is not running\n",
      "AgentNotConnected",
      "domain is not running"
    ],
    ["error: failed to get domain 'vm1'\n", "DomainNotFound", "failed to get domain 'vm1'"],
    [
      "error: internal error: unable to execute QEMU agent command 'guest-exec-status': " +
        "Invalid parameter 'pid'\n",
      "AgentCommandFailed",
      "rejected guest-exec-status: Invalid parameter 'pid'"
    ],
    ["error: Unable to encode message payload\n", "AgentReplyTooLarge", "4 MiB"],
    [
      "error: failed to connect to the hypervisor\nerror: Failed to connect socket to " +
        "'/var/run/libvirt/libvirt-sock': No such file or directory\n",
      "AgentTransportFailed",
      "virsh -q -c qemu:///system qemu-agent-command vm1"
    ]
  ]
  for (const [stderr, tag, text] of stderrCases) {
    test(`stderr maps to ${tag}: ${stderr.split("\n")[0]?.slice(7, 60)}`, async () => {
      const { exit } = await viaVirsh(() => Effect.succeed(result(1, "", stderr)))
      const error = failureOf(exit)
      expect(error._tag).toBe(tag)
      expect(error.message).toContain(text)
      expect(error.domain).toBe("vm1")
      expect(error.command).toBe("guest-exec-status")
    })
  }

  test("not connected exits 127", async () => {
    const { exit } = await viaVirsh(() =>
      Effect.succeed(result(1, "", "error: QEMU guest agent is not connected"))
    )
    expect(failureOf(exit).exitCode).toBe(127)
  })

  test("process timeout is an agent timeout", async () => {
    const { exit, calls } = await viaVirsh((argv) =>
      Effect.fail(new CommandTimedOut({ argv, timeout: Duration.seconds(35) }))
    )
    expect(failureOf(exit)._tag).toBe("AgentTimedOut")
    expect(Duration.toSeconds(calls[0]!.options!.timeout as Duration.Duration)).toBe(35)
  })

  test("request over the argument limit is not run", async () => {
    const { exit, calls } = await viaVirsh(() => Effect.succeed(result(0, "{}")), {
      command: "guest-exec",
      args: { path: "cat", "input-data": "A".repeat(140_000) }
    })
    const error = failureOf(exit)
    expect(error._tag).toBe("AgentTransportFailed")
    expect(error.message).toContain("does not fit in one command-line argument")
    expect(calls.length).toBe(0)
  })

  test("output that is not a reply", async () => {
    const { exit } = await viaVirsh(() => Effect.succeed(result(0, "hello")))
    expect(failureOf(exit)._tag).toBe("AgentProtocolError")
  })
})

// ---------------------------------------------------------------------------------------------
// libvirt RPC

const startDaemon = async (
  agent: (call: AgentCall) => AgentAnswer | undefined,
  options: Partial<FakeLibvirtdOptions> = {}
) => {
  const daemon = await startFakeLibvirtd(dir, { domains: ["vm1"], agent, ...options })
  daemons.push(daemon)
  return daemon
}

const withRpc = <A, E>(
  daemon: FakeLibvirtd,
  use: (transport: AgentTransport["Service"]) => Effect.Effect<A, E>
) =>
  Effect.runPromiseExit(
    AgentTransport.use(use).pipe(
      Effect.provide(AgentTransport.layerLibvirtRpc("qemu:///system", daemon.path))
    )
  )

const reply = (value: unknown): AgentAnswer => ({ reply: JSON.stringify({ return: value }) })

describe("libvirt RPC transport", () => {
  test("opens, looks up once, sends the command", async () => {
    const daemon = await startDaemon(() => reply({ pid: 9 }))
    const exit = await withRpc(daemon, (transport) =>
      Effect.all([
        transport.execute("vm1", "guest-exec", { path: "true" }, thirtySeconds),
        transport.execute("vm1", "guest-ping", undefined, Duration.millis(200))
      ])
    )
    expect(successOf(exit)).toEqual([{ pid: 9 }, { pid: 9 }])
    expect(daemon.openedNames).toEqual(["qemu:///system"])
    expect(daemon.calls).toEqual([
      "20008086:66",
      "20008086:1",
      "20008086:23",
      "20008087:3",
      "20008087:3",
      "20008086:2"
    ])
    expect(daemon.agentCalls[0]).toEqual({
      domain: "vm1",
      request: '{"execute":"guest-exec","arguments":{"path":"true"}}',
      timeout: 30
    })
    expect(daemon.agentCalls[1]?.timeout).toBe(1)
  })

  test("events and stray replies are skipped", async () => {
    const daemon = await startDaemon(() => reply({ exited: true, exitcode: 0 }), {
      noise: true,
      chunkBytes: 5
    })
    const exit = await withRpc(daemon, (transport) =>
      transport.execute("vm1", "guest-exec-status", { pid: 1 }, thirtySeconds)
    )
    expect(successOf(exit)).toEqual({ exited: true, exitcode: 0 })
  })

  test("unknown domain", async () => {
    const daemon = await startDaemon(() => reply({}))
    const exit = await withRpc(daemon, (transport) =>
      transport.execute("nope", "guest-ping", undefined, thirtySeconds)
    )
    const error = failureOf(exit)
    expect(error._tag).toBe("DomainNotFound")
    expect(error.message).toContain("no domain with matching name 'nope'")
  })

  test("agent unresponsive code means not connected", async () => {
    const daemon = await startDaemon(() => ({
      error: {
        code: 86,
        message: "Guest agent is not responding: QEMU guest agent is not connected"
      }
    }))
    const exit = await withRpc(daemon, (transport) =>
      transport.execute("vm1", "guest-ping", undefined, thirtySeconds)
    )
    const error = failureOf(exit)
    expect(error._tag).toBe("AgentNotConnected")
    expect(error.exitCode).toBe(127)
  })

  test("agent error text is kept", async () => {
    const daemon = await startDaemon(() => ({
      error: {
        code: 1,
        message:
          "internal error: unable to execute QEMU agent command 'guest-exec': " +
          'Failed to execute child process "nope" (No such file or directory)'
      }
    }))
    const exit = await withRpc(daemon, (transport) =>
      transport.execute("vm1", "guest-exec", { path: "nope" }, thirtySeconds)
    )
    const error = failureOf(exit)
    expect(error._tag).toBe("AgentCommandFailed")
    expect(error.desc).toBe('Failed to execute child process "nope" (No such file or directory)')
  })

  test("dropped connection fails, next call reconnects", async () => {
    let answered = 0
    const daemon = await startDaemon(() => (answered++ === 0 ? { drop: true } : reply({})))
    const exit = await withRpc(daemon, (transport) =>
      Effect.gen(function* () {
        const first = yield* Effect.exit(
          transport.execute("vm1", "guest-ping", undefined, thirtySeconds)
        )
        const second = yield* transport.execute("vm1", "guest-ping", undefined, thirtySeconds)
        return { first, second }
      })
    )
    const { first, second } = successOf(exit)
    expect(failureOf(first)._tag).toBe("AgentTransportFailed")
    expect(second).toEqual({})
    expect(daemon.connections()).toBe(2)
  })

  test("authentication required makes it unavailable", async () => {
    const daemon = await startDaemon(() => reply({}), { authTypes: [1] })
    const exit = await withRpc(daemon, (transport) =>
      transport.execute("vm1", "guest-ping", undefined, thirtySeconds)
    )
    const error = failureOf(exit)
    expect(error._tag).toBe("LibvirtRpcUnavailable")
    expect(error.message).toContain("requires authentication")
  })

  test("missing socket makes it unavailable", async () => {
    const exit = await Effect.runPromiseExit(
      AgentTransport.use((transport) => Effect.succeed(transport.kind)).pipe(
        Effect.provide(AgentTransport.layerLibvirtRpc("qemu:///system", join(dir, "none.sock")))
      )
    )
    expect(failureOf(exit)._tag).toBe("LibvirtRpcUnavailable")
  })
})

describe("layerAuto", () => {
  const kindFor = (uri: string) =>
    Effect.runPromise(
      AgentTransport.use((transport) => Effect.succeed(transport.kind)).pipe(
        Effect.provide(
          AgentTransport.layerAuto(uri).pipe(
            Layer.provide(fakeExec([], () => Effect.succeed(result(0, "{}"))))
          )
        )
      )
    )

  test("RPC when the socket answers", async () => {
    const daemon = await startDaemon(() => reply({}))
    expect(await kindFor(`qemu:///system?socket=${daemon.path}`)).toBe("libvirt-rpc")
  })

  test("virsh when the socket is missing", async () => {
    expect(await kindFor(`qemu:///system?socket=${join(dir, "gone.sock")}`)).toBe("virsh")
  })

  test("virsh for a remote URI", async () => {
    expect(await kindFor("qemu+ssh://host/system")).toBe("virsh")
  })
})

describe("localLibvirtSockets", () => {
  test("system URI", () => {
    expect(localLibvirtSockets("qemu:///system")).toEqual({
      name: "qemu:///system",
      socketPaths: ["/var/run/libvirt/virtqemud-sock", "/var/run/libvirt/libvirt-sock"]
    })
  })

  test("session URI", () => {
    expect(localLibvirtSockets("qemu:///session", "/run/user/1000")).toEqual({
      name: "qemu:///session",
      socketPaths: ["/run/user/1000/libvirt/virtqemud-sock", "/run/user/1000/libvirt/libvirt-sock"]
    })
    expect(localLibvirtSockets("qemu:///session", undefined)).toBeUndefined()
  })

  test("socket parameter", () => {
    expect(localLibvirtSockets("qemu+unix:///system?socket=/tmp/x.sock")).toEqual({
      name: "qemu:///system",
      socketPaths: ["/tmp/x.sock"]
    })
  })

  test("URIs it cannot serve", () => {
    for (const uri of [
      "qemu+ssh://host/system",
      "qemu+tcp://h/system",
      "test:///default",
      "xen:///"
    ]) {
      expect(localLibvirtSockets(uri)).toBeUndefined()
    }
  })
})
