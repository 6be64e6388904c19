import { describe, expect, test } from "bun:test"
import { Duration, Effect, Exit, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import {
  type AgentError,
  AgentNotConnected,
  AgentTransport,
  DomainNotFound
} from "../../../src/agent/AgentTransport.ts"
import { GuestAgent } from "../../../src/agent/GuestAgent.ts"

interface Sent {
  readonly command: string
  readonly args: object | undefined
}

const withAgent = <A, E>(
  respond: (command: string, args: object | undefined) => Effect.Effect<unknown, AgentError>,
  use: (agent: GuestAgent["Service"]) => Effect.Effect<A, E>
) => {
  const sent: Array<Sent> = []
  const transport = AgentTransport.layerTest((_domain, command, args) => {
    sent.push({ command, args })
    return respond(command, args)
  })
  const layer = Layer.mergeAll(GuestAgent.layer.pipe(Layer.provide(transport)), TestClock.layer())
  return Effect.runPromiseExit(GuestAgent.use(use).pipe(Effect.provide(layer))).then((exit) => ({
    exit,
    sent
  }))
}

const failureOf = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
  if (failure === undefined) throw new Error(`no typed failure: ${String(exit.cause)}`)
  return failure.error as { _tag: string; message: string }
}

const notConnected = (detail: string) =>
  new AgentNotConnected({ domain: "vm1", command: "guest-shutdown", detail })

describe("GuestAgent.exec", () => {
  test("sends path, arguments, env and base64 input", async () => {
    const { exit, sent } = await withAgent(
      () => Effect.succeed({ pid: 31 }),
      (agent) =>
        agent.exec("vm1", {
          path: "env",
          args: ["-0"],
          env: ["A=1"],
          input: new Uint8Array([0, 255])
        })
    )
    expect(Exit.isSuccess(exit)).toBe(true)
    expect(Exit.isSuccess(exit) ? exit.value : undefined).toBe(31)
    expect(sent[0]).toEqual({
      command: "guest-exec",
      args: {
        path: "env",
        arg: ["-0"],
        env: ["A=1"],
        "input-data": "AP8=",
        "capture-output": true
      }
    })
  })

  test("reply without a pid is a protocol error", async () => {
    const { exit } = await withAgent(
      () => Effect.succeed({ process: 1 }),
      (agent) => agent.exec("vm1", { path: "true" })
    )
    const error = failureOf(exit)
    expect(error._tag).toBe("AgentProtocolError")
    expect(error.message).toContain("guest-exec")
  })
})

describe("GuestAgent.awaitExit", () => {
  test("decodes output and flags", async () => {
    const { exit } = await withAgent(
      () =>
        Effect.succeed({
          exited: true,
          exitcode: 1,
          "out-data": "aGk=",
          "err-truncated": true
        }),
      (agent) => agent.awaitExit("vm1", 5)
    )
    if (Exit.isFailure(exit)) throw new Error(String(exit.cause))
    expect(exit.value.exitCode).toBe(1)
    expect(new TextDecoder().decode(exit.value.stdout)).toBe("hi")
    expect(exit.value.stderr.length).toBe(0)
    expect(exit.value.stdoutTruncated).toBe(false)
    expect(exit.value.stderrTruncated).toBe(true)
  })
})

describe("GuestAgent.waitForAgent", () => {
  test("waits for a domain not defined yet", async () => {
    let calls = 0
    const { exit, sent } = await withAgent(
      (command) => {
        calls += 1
        return calls === 1
          ? Effect.fail(new DomainNotFound({ domain: "vm1", command, detail: "no such domain" }))
          : Effect.succeed({})
      },
      (agent) =>
        Effect.gen(function* () {
          const fiber = yield* Effect.forkChild(agent.waitForAgent("vm1", Duration.seconds(60)))
          yield* TestClock.adjust("1 second")
          return yield* Fiber.join(fiber)
        })
    )
    expect(Exit.isSuccess(exit)).toBe(true)
    expect(sent.length).toBe(2)
  })

  test("a domain still missing at the end is reported", async () => {
    const { exit } = await withAgent(
      (command) =>
        Effect.fail(new DomainNotFound({ domain: "vm1", command, detail: "no such domain" })),
      (agent) =>
        Effect.gen(function* () {
          const fiber = yield* Effect.forkChild(agent.waitForAgent("vm1", Duration.seconds(2)))
          yield* TestClock.adjust("3 seconds")
          return yield* Fiber.join(fiber)
        })
    )
    const error = failureOf(exit)
    expect(error._tag).toBe("AgentNotConnected")
    expect(error.message).toContain("no such domain")
  })
})

describe("GuestAgent.shutdown", () => {
  test("agent disappearing counts as accepted", async () => {
    const { exit, sent } = await withAgent(
      () => Effect.fail(notConnected("Guest agent disappeared while executing command")),
      (agent) => agent.shutdown("vm1", "reboot")
    )
    expect(Exit.isSuccess(exit)).toBe(true)
    expect(sent[0]).toEqual({ command: "guest-shutdown", args: { mode: "reboot" } })
  })

  test("agent not connected fails", async () => {
    const { exit } = await withAgent(
      () => Effect.fail(notConnected("QEMU guest agent is not connected")),
      (agent) => agent.shutdown("vm1")
    )
    expect(failureOf(exit)._tag).toBe("AgentNotConnected")
  })
})
