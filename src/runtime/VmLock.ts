import { Data, Effect } from "effect"
import { ExitCode } from "../domain/ExitCode.ts"
import type { Layout } from "../domain/Layout.ts"
import { lockFile } from "../host/Flock.ts"

export class VmBusy extends Data.TaggedError("VmBusy")<{ readonly vmDir: string }> {
  readonly exitCode = ExitCode.Busy
  override get message(): string {
    return `another vm-runner is using ${this.vmDir}; stop it first, or give this VM another GUEST_NAME`
  }
}

/** Holds an exclusive lock on the VM directory for the rest of the scope. */
export const acquireVmLock = (layout: Layout) =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const lock = lockFile(layout.lockFile, { wait: false })
      return lock === undefined
        ? Effect.fail(new VmBusy({ vmDir: layout.vmDir }))
        : Effect.succeed(lock)
    }),
    (lock) => Effect.sync(() => lock.release())
  )
