import { readFileSync } from "node:fs"
import { Data, Effect, Option, Schedule } from "effect"
import { Libvirt } from "../libvirt/Libvirt.ts"

class AgentNotReady extends Data.TaggedError("AgentNotReady")<{ readonly detail: string }> {}

/**
 * Agent polling: 100 ms at first, doubling to at most 2 s. Under TCG the agent responds 20 to
 * 60 s after start, so polling faster than that only burns host CPU the guest needs.
 */
export const agentPollSchedule = Schedule.min([
  Schedule.exponential("100 millis", 2),
  Schedule.spaced("2 seconds")
])

/** How often to look for cloud-init's result file, once the agent responds. */
export const cloudInitPollSchedule = Schedule.spaced("2 seconds")

/** Sends one guest-agent command through libvirt and returns its `return` value. */
export const agentCommand = (domain: string, execute: string, args?: object, timeoutSeconds = 5) =>
  Effect.gen(function* () {
    const libvirt = yield* Libvirt
    const request = JSON.stringify(args === undefined ? { execute } : { execute, arguments: args })
    const text = yield* libvirt
      .virsh("send a guest agent command", domain, [
        "qemu-agent-command",
        domain,
        request,
        "--timeout",
        String(timeoutSeconds)
      ])
      .pipe(Effect.mapError((error) => new AgentNotReady({ detail: error.detail })))
    return (JSON.parse(text) as { return: unknown }).return
  })

/** Polls guest-ping until the agent responds or `limit` passes, and returns whether it did. */
export const waitForAgent = (domain: string, limit: `${number} ${"seconds" | "minutes"}`) =>
  agentCommand(domain, "guest-ping").pipe(
    Effect.retry(agentPollSchedule),
    Effect.timeoutOption(limit),
    Effect.map(Option.isSome)
  )

/** Reads a whole file in the guest through the agent's file commands. */
export const readGuestFile = (domain: string, path: string) =>
  Effect.gen(function* () {
    const handle = (yield* agentCommand(domain, "guest-file-open", { path, mode: "r" })) as number
    const chunks: Array<Buffer> = []
    for (;;) {
      const chunk = (yield* agentCommand(domain, "guest-file-read", { handle, count: 65536 })) as {
        "buf-b64": string
        eof: boolean
      }
      chunks.push(Buffer.from(chunk["buf-b64"], "base64"))
      if (chunk.eof) break
    }
    yield* agentCommand(domain, "guest-file-close", { handle }).pipe(Effect.ignore)
    return Buffer.concat(chunks).toString("utf8")
  })

export interface CloudInitResult {
  readonly datasource: string
  readonly errors: ReadonlyArray<string>
}

/**
 * Waits for /run/cloud-init/result.json, which cloud-init writes when its last stage ends.
 * Reading it through the agent's file commands costs far less than running
 * `cloud-init status --wait` in a TCG guest.
 */
export const waitForCloudInit = (domain: string) =>
  readGuestFile(domain, "/run/cloud-init/result.json").pipe(
    Effect.retry(cloudInitPollSchedule),
    Effect.map((text) => {
      const result = JSON.parse(text) as {
        v1?: { datasource?: string | null; errors?: Array<string> }
      }
      return {
        datasource: result.v1?.datasource ?? "none",
        errors: result.v1?.errors ?? []
      } satisfies CloudInitResult
    })
  )

/** The kernel's first line on the serial console, which marks the end of firmware and loader. */
const kernelBanner = "Linux version"

/** Completes when the serial log shows the kernel starting. */
export const waitForKernel = (serialLog: string) =>
  Effect.sync(() => {
    try {
      return readFileSync(serialLog, "latin1").includes(kernelBanner)
    } catch {
      return false
    }
  }).pipe(
    Effect.repeat({ schedule: Schedule.spaced("250 millis"), until: (seen) => seen }),
    Effect.asVoid
  )
