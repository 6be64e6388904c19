import { Data, Effect } from "effect"
import { formatByteSize } from "../domain/ByteSize.ts"
import { ExitCode } from "../domain/ExitCode.ts"
import type { DiskAction } from "../runtime/Plan.ts"
import type { Preview } from "../runtime/Preview.ts"

export class DryRunFailed extends Data.TaggedError("DryRunFailed")<{ readonly failed: number }> {
  readonly exitCode = ExitCode.Environment
  override get message(): string {
    return `dry run: ${this.failed} check${this.failed === 1 ? "" : "s"} failed; the run would stop`
  }
}

const describeDisk = (action: DiskAction): string => {
  switch (action._tag) {
    case "Reuse":
      return action.growTo === undefined
        ? "reuse the persistent disk"
        : `reuse and grow to ${formatByteSize(action.growTo)}`
    case "Overlay":
      return `qcow2 overlay on ${action.backing}${action.size === undefined ? "" : `, ${formatByteSize(action.size)}`}`
    case "Blank":
      return `new blank ${formatByteSize(action.size)}${action.preallocate ? ", preallocated" : ""}`
  }
}

/** Renders the plan and the checks of `--dry-run` for people. */
export const renderPreview = (preview: Preview): string => {
  const { plan } = preview
  const { config, domain } = plan
  const lines = [
    `plan for ${config.name}:`,
    `  image        ${preview.imageSummary}`,
    `  work disk    ${plan.workDisk.path}: ${describeDisk(plan.workDisk.action)}`,
    ...plan.extraDisks.map(
      (disk) => `  disk ${disk.index}       ${disk.path}: ${describeDisk(disk.action)}`
    ),
    `  seed         ${plan.seed === undefined ? "none (cloud-init off)" : `${plan.layout.seedIso}: ${Object.keys(plan.seed).join(", ")}`}`,
    ...(plan.installIso === undefined ? [] : [`  installer    ${plan.installIso}`]),
    `  domain       ${config.name} (${domain.uuid}), ${domain.accel}, ${config.boot.machine}, ${config.boot.mode} boot, ` +
      `${config.cpus} vCPU, ${config.memoryMiB} MiB, boot order ${domain.config.boot.order.join(",")}`,
    ...plan.notes.map((note) => `  note         ${note}`),
    ...plan.warnings.map((warning) => `  warning      ${warning}`),
    "checks:",
    ...preview.checks.map(
      (check) => `  ${check.ok ? "ok  " : "FAIL"}  ${check.name.padEnd(20)} ${check.detail}`
    )
  ]
  return `${lines.join("\n")}\n`
}

export const failIfChecksFailed = (preview: Preview) => {
  const failed = preview.checks.filter((check) => !check.ok).length
  return failed === 0 ? Effect.void : Effect.fail(new DryRunFailed({ failed }))
}
