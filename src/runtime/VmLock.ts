import { Data, Effect } from "effect"
import { ExitCode } from "../domain/ExitCode.ts"
import type { Layout } from "../domain/Layout.ts"
import { FileLock } from "../images/FileLock.ts"

export class VmBusy extends Data.TaggedError("VmBusy")<{ readonly vmDir: string }> {
  readonly exitCode = ExitCode.Busy
  override get message(): string {
    return `another vm-runner is using ${this.vmDir}; stop it first, or give this VM another GUEST_NAME`
  }
}

/** Holds an exclusive lock on the VM directory for the rest of the scope. */
export const acquireVmLock = (layout: Layout) =>
  Effect.gen(function* () {
    const locks = yield* FileLock
    const held = yield* locks.tryHold(layout.lockFile)
    if (!held) return yield* new VmBusy({ vmDir: layout.vmDir })
  })

/** Tells whether another run holds the VM directory, without creating anything. */
export const vmDirInUse = (layout: Layout) =>
  Effect.gen(function* () {
    const locks = yield* FileLock
    return !(yield* locks.tryHold(layout.lockFile))
  }).pipe(Effect.scoped)
