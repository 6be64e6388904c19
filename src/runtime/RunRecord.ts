import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"

/**
 * Where a running launcher records its domain, so `guest-exec` and `health` in the same
 * container find it without being told. /run is a tmpfs in containers and on systemd hosts,
 * so a record never outlives a reboot.
 */
export const runRecordDir = (): string => process.env.VM_RUNNER_RUN_DIR ?? "/run/vm-runner"

export interface RunRecord {
  readonly domain: string
  readonly uri: string
  readonly pid: number
  readonly cloudInit: boolean
  readonly startedAt: string
}

export const writeRunRecord = (record: RunRecord): void => {
  mkdirSync(runRecordDir(), { recursive: true })
  const path = join(runRecordDir(), `${record.domain}.json`)
  writeFileSync(`${path}.tmp`, JSON.stringify(record))
  renameSync(`${path}.tmp`, path)
}

export const removeRunRecord = (domain: string): void =>
  rmSync(join(runRecordDir(), `${domain}.json`), { force: true })

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Records of launchers that are still running, newest first. */
export const liveRunRecords = (): ReadonlyArray<RunRecord> => {
  let names: Array<string>
  try {
    names = readdirSync(runRecordDir()).filter((name) => name.endsWith(".json"))
  } catch {
    return []
  }
  return names
    .flatMap((name) => {
      try {
        return [JSON.parse(readFileSync(join(runRecordDir(), name), "utf8")) as RunRecord]
      } catch {
        return []
      }
    })
    .filter((record) => isAlive(record.pid))
    .sort((a, b) => b.startedAt.localeCompare(a.startedAt))
}

/** The VM a command without `--domain` acts on, or why there is none to choose. */
export type RunningVmChoice =
  | { readonly _tag: "Found"; readonly record: RunRecord }
  | { readonly _tag: "None"; readonly detail: string }
  | { readonly _tag: "Ambiguous"; readonly detail: string }

/**
 * Picks the VM that `guest-exec` and `health` act on: the one GUEST_NAME names when it is set
 * (in a container the launcher's own environment carries it), else the only one running here.
 * Several VMs without GUEST_NAME are ambiguous, never resolved by age.
 */
export const chooseRunningVm = (
  records: ReadonlyArray<RunRecord>,
  guestName: string | undefined
): RunningVmChoice => {
  const running = records.map((record) => record.domain).join(", ")
  const requested = guestName?.trim()
  if (requested !== undefined && requested !== "") {
    const named = records.find((record) => record.domain === requested)
    if (named !== undefined) return { _tag: "Found", record: named }
    const others = records.length === 0 ? "none runs" : `running: ${running}`
    return {
      _tag: "None",
      detail:
        `GUEST_NAME=${requested}: no vm-runner VM of that name runs here (${others}); start it, ` +
        "or name a libvirt domain with --domain NAME"
    }
  }
  const [only] = records
  if (records.length === 1 && only !== undefined) return { _tag: "Found", record: only }
  if (records.length === 0) {
    return {
      _tag: "None",
      detail:
        "no vm-runner VM is running here; start one, or name a libvirt domain with --domain NAME"
    }
  }
  return {
    _tag: "Ambiguous",
    detail: `several VMs run here (${running}); choose one with --domain NAME or GUEST_NAME`
  }
}
