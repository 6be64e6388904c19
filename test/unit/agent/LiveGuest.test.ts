import { describe, expect, test } from "bun:test"
import { BunServices } from "@effect/platform-bun"
import { Duration, Effect, Exit, Layer, Sink, Stdio, Stream } from "effect"
import { AgentTransport } from "../../../src/agent/AgentTransport.ts"
import { GuestAgent } from "../../../src/agent/GuestAgent.ts"
import { type GuestExecOptions, runGuestExec } from "../../../src/agent/GuestExec.ts"
import { Exec } from "../../../src/process/Exec.ts"

/**
 * guest-exec against a running libvirt domain whose guest runs qemu-guest-agent. Skipped unless
 * VM_RUNNER_TEST_AGENT_DOMAIN names the domain; VM_RUNNER_TEST_LIBVIRT_URI sets the URI
 * (default qemu:///system). The guest needs /bin/sh, head, tr, cat and kill.
 */
const domain = process.env.VM_RUNNER_TEST_AGENT_DOMAIN
const uri = process.env.VM_RUNNER_TEST_LIBVIRT_URI ?? "qemu:///system"

const transports = {
  "libvirt-rpc": () => AgentTransport.layerLibvirtRpc(uri),
  virsh: () => AgentTransport.layerVirsh(uri)
} as const

const run = async (
  kind: keyof typeof transports,
  options: Partial<GuestExecOptions>,
  stdin?: Uint8Array
) => {
  const stdout: Array<Uint8Array> = []
  const stderr: Array<Uint8Array> = []
  const record = (into: Array<Uint8Array>) => (chunk: string | Uint8Array) =>
    Effect.sync(() => {
      into.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk)
    })
  const layer = Layer.mergeAll(
    GuestAgent.layer.pipe(
      Layer.provide(transports[kind]()),
      Layer.provide(Exec.layer),
      Layer.provide(BunServices.layer)
    ),
    Stdio.layerTest({
      stdout: () => Sink.forEach(record(stdout)),
      stderr: () => Sink.forEach(record(stderr)),
      stdin: stdin === undefined ? Stream.empty : Stream.make(stdin),
      stdinIsTerminal: Effect.succeed(stdin === undefined)
    })
  )
  const exit = await Effect.runPromiseExit(
    runGuestExec({ domain: domain!, command: ["true"], ...options }).pipe(Effect.provide(layer))
  )
  return { exit, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString() }
}

const statusOf = (exit: Exit.Exit<number, unknown>) => {
  if (Exit.isFailure(exit)) throw new Error(String(exit.cause))
  return exit.value
}

const tagOf = (exit: Exit.Exit<number, unknown>) => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got status ${exit.value}`)
  const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
  return (failure?.error as { _tag: string } | undefined)?._tag
}

for (const kind of Object.keys(transports) as Array<keyof typeof transports>) {
  describe.skipIf(domain === undefined)(`live guest through ${kind}`, () => {
    test("true", async () => {
      expect(statusOf((await run(kind, { command: ["true"] })).exit)).toBe(0)
    })

    test("exit 42", async () => {
      expect(statusOf((await run(kind, { command: ["exit 42"] })).exit)).toBe(42)
    })

    test("stdout and stderr", async () => {
      const outcome = await run(kind, { command: ["echo out; echo err >&2"] })
      expect(statusOf(outcome.exit)).toBe(0)
      expect(outcome.stdout.toString()).toBe("out\n")
      expect(outcome.stderr).toBe("err\n")
    })

    test("stdin", async () => {
      const outcome = await run(kind, { command: ["cat"] }, Buffer.from("hi\n"))
      expect(outcome.stdout.toString()).toBe("hi\n")
    })

    test("signal", async () => {
      expect(statusOf((await run(kind, { command: ["kill -KILL $$"] })).exit)).toBe(137)
    })

    test("timeout", async () => {
      const outcome = await run(kind, { command: ["sleep", "60"], timeout: Duration.seconds(2) })
      expect(tagOf(outcome.exit)).toBe("GuestExecTimedOut")
    }, 30_000)

    test("5 MB captured is too large", async () => {
      const outcome = await run(kind, { command: ["head -c 5000000 /dev/zero"] })
      expect(tagOf(outcome.exit)).toBe("AgentReplyTooLarge")
    }, 60_000)

    test("5 MB spooled", async () => {
      const outcome = await run(kind, {
        command: ["head -c 5000000 /dev/zero | tr '\\0' z"],
        output: "spool"
      })
      expect(statusOf(outcome.exit)).toBe(0)
      expect(outcome.stdout.length).toBe(5_000_000)
      expect(outcome.stdout.every((byte) => byte === 0x7a)).toBe(true)
    }, 60_000)
  })
}
