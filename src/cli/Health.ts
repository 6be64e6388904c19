import { Console, Data, Effect } from "effect"
import { Libvirt } from "../libvirt/Libvirt.ts"
import { agentCommand, readGuestFile } from "../runtime/Readiness.ts"
import { chooseRunningVm, liveRunRecords } from "../runtime/RunRecord.ts"

export class Unhealthy extends Data.TaggedError("Unhealthy")<{ readonly reason: string }> {
  /** Docker and Kubernetes treat any exit status other than 0 as unhealthy; 1 is the convention. */
  readonly exitCode = 1
  override get message(): string {
    return `unhealthy: ${this.reason}`
  }
}

/**
 * Reports healthy when the domain runs and its guest agent responds, and, with
 * `requireCloudInit`, when cloud-init has finished. Used by the image's HEALTHCHECK and by
 * Kubernetes probes.
 */
export const checkHealth = (domainOption: string | undefined, requireCloudInit: boolean) =>
  Effect.gen(function* () {
    const records = liveRunRecords()
    let domain = domainOption
    let record = records.find((entry) => entry.domain === domainOption)
    if (domain === undefined) {
      const choice = chooseRunningVm(records, process.env.GUEST_NAME)
      if (choice._tag !== "Found") return yield* new Unhealthy({ reason: choice.detail })
      record = choice.record
      domain = record.domain
    }
    const libvirt = yield* Libvirt
    const state = yield* libvirt.state(domain).pipe(Effect.orElseSucceed(() => undefined))
    if (state !== "running") {
      return yield* new Unhealthy({ reason: `domain ${domain} is ${state ?? "not defined"}` })
    }
    yield* agentCommand(domain, "guest-ping", undefined, 3).pipe(
      Effect.mapError(
        () => new Unhealthy({ reason: `the guest agent of ${domain} does not answer yet` })
      )
    )
    if (requireCloudInit && record?.cloudInit !== false) {
      yield* readGuestFile(domain, "/run/cloud-init/result.json").pipe(
        Effect.mapError(() => new Unhealthy({ reason: `cloud-init has not finished in ${domain}` }))
      )
    }
    yield* Console.log(`healthy: ${domain} runs and its guest agent responds`)
  })
