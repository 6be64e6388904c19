import { mkdirSync, renameSync, writeFileSync } from "node:fs"
import { dirname } from "node:path"
import { Effect } from "effect"

/** Boot phases, in the order they happen. */
export type Phase = "image" | "prepare" | "define" | "start" | "kernel" | "agent" | "cloudInit"

/**
 * Records when each launch phase ended, logs it with the time since start, and writes the
 * boot timing report as JSON.
 */
export class Timeline {
  readonly startedAt = performance.now()
  readonly marks = new Map<Phase, number>()

  constructor(readonly reportPath: string) {}

  mark(phase: Phase, message: string): Effect.Effect<void> {
    return Effect.suspend(() => {
      const seconds = (performance.now() - this.startedAt) / 1000
      this.marks.set(phase, seconds)
      return Effect.logInfo(`${message} (${seconds.toFixed(1)} s)`)
    })
  }

  /** Seconds from process start to the end of each phase. */
  report(): Record<string, number> {
    return Object.fromEntries(
      [...this.marks].map(([phase, seconds]) => [phase, Number(seconds.toFixed(2))])
    )
  }

  writeReport(): Effect.Effect<void> {
    return Effect.sync(() => {
      mkdirSync(dirname(this.reportPath), { recursive: true })
      const body = JSON.stringify(
        { writtenAt: new Date().toISOString(), secondsSinceStart: this.report() },
        null,
        2
      )
      writeFileSync(`${this.reportPath}.tmp`, `${body}\n`)
      renameSync(`${this.reportPath}.tmp`, this.reportPath)
    }).pipe(
      Effect.andThen(() => {
        const parts = Object.entries(this.report()).map(
          ([phase, seconds]) => `${phase} ${seconds} s`
        )
        return Effect.logInfo(`boot timing: ${parts.join(", ")} (also in ${this.reportPath})`)
      }),
      Effect.catchDefect((error) =>
        Effect.logWarning(`cannot write the boot report: ${String(error)}`)
      )
    )
  }
}
