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
