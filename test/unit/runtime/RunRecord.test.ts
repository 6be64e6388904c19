import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type * as RunRecordModule from "../../../src/runtime/RunRecord.ts"

const root = mkdtempSync(join(tmpdir(), "vm-runner-runrecord-"))
/** Not created yet, so the first test finds no directory. */
const runDir = join(root, "run")

let records: typeof RunRecordModule

/** Returns a pid that no process has: that of a child that has already exited. */
const deadPid = (): number => {
  const child = Bun.spawnSync(["true"])
  return child.pid
}

const record = (domain: string, pid: number, startedAt: string): RunRecordModule.RunRecord => ({
  domain,
  uri: "qemu:///system",
  pid,
  cloudInit: true,
  startedAt
})

const previousRunDir = process.env.VM_RUNNER_RUN_DIR

beforeAll(async () => {
  // RunRecord reads VM_RUNNER_RUN_DIR at each call, so the tests point it at a temp directory.
  process.env.VM_RUNNER_RUN_DIR = runDir
  records = await import("../../../src/runtime/RunRecord.ts")
})

afterAll(() => {
  if (previousRunDir === undefined) delete process.env.VM_RUNNER_RUN_DIR
  else process.env.VM_RUNNER_RUN_DIR = previousRunDir
  rmSync(root, { recursive: true, force: true })
})

describe("liveRunRecords", () => {
  test("missing directory has none", () => {
    expect(existsSync(runDir)).toBe(false)
    expect(records.liveRunRecords()).toEqual([])
  })

  test("live records only, newest first", () => {
    records.writeRunRecord(record("old", process.pid, "2025-01-01T10:00:00.000Z"))
    records.writeRunRecord(record("dead", deadPid(), "2025-01-03T10:00:00.000Z"))
    records.writeRunRecord(record("new", process.pid, "2025-01-02T10:00:00.000Z"))
    const live = records.liveRunRecords()
    expect(live.map((entry) => entry.domain)).toEqual(["new", "old"])
  })

  test("record reads back whole", () => {
    const written = record("whole", process.pid, "2025-01-04T10:00:00.000Z")
    records.writeRunRecord(written)
    expect(records.liveRunRecords().find((entry) => entry.domain === "whole")).toEqual(written)
  })

  test("unreadable and foreign files are skipped", () => {
    writeFileSync(join(runDir, "broken.json"), "{not json")
    writeFileSync(join(runDir, "notes.txt"), "{}")
    const domains = records.liveRunRecords().map((entry) => entry.domain)
    expect(domains).not.toContain("broken")
    expect(domains).toHaveLength(3)
  })

  test("writing again replaces the record", () => {
    records.writeRunRecord(record("old", process.pid, "2025-02-01T10:00:00.000Z"))
    const first = records.liveRunRecords()[0]
    expect(first?.domain).toBe("old")
    expect(first?.startedAt).toBe("2025-02-01T10:00:00.000Z")
  })

  test("no temporary files left", () => {
    expect(readdirSync(runDir).filter((name) => name.endsWith(".tmp"))).toEqual([])
  })
})

describe("removeRunRecord", () => {
  test("removes the domain's record", () => {
    records.removeRunRecord("old")
    expect(existsSync(join(runDir, "old.json"))).toBe(false)
    expect(records.liveRunRecords().map((entry) => entry.domain)).not.toContain("old")
  })

  test("missing record is no error", () => {
    expect(() => records.removeRunRecord("never-written")).not.toThrow()
  })
})

describe("chooseRunningVm", () => {
  const singleVm = [record("vm-a", 1, "2026-12-04T10:00:00Z")]
  const twoVms = [...singleVm, record("vm-b", 2, "2026-12-04T11:00:00Z")]

  test("the only VM", () => {
    const choice = records.chooseRunningVm(singleVm, undefined)
    expect(choice._tag).toBe("Found")
    if (choice._tag === "Found") expect(choice.record.domain).toBe("vm-a")
  })

  test("GUEST_NAME picks among several", () => {
    const choice = records.chooseRunningVm(twoVms, " vm-b ")
    expect(choice._tag).toBe("Found")
    if (choice._tag === "Found") expect(choice.record.domain).toBe("vm-b")
  })

  test("GUEST_NAME of no running VM", () => {
    const choice = records.chooseRunningVm(singleVm, "vm-z")
    expect(choice._tag).toBe("None")
    if (choice._tag === "None") {
      expect(choice.detail).toStartWith("GUEST_NAME=vm-z: no vm-runner VM of that name")
      expect(choice.detail).toContain("running: vm-a")
    }
  })

  test("no VM at all", () => {
    expect(records.chooseRunningVm([], undefined)._tag).toBe("None")
  })

  test("several without GUEST_NAME", () => {
    const choice = records.chooseRunningVm(twoVms, "")
    expect(choice._tag).toBe("Ambiguous")
    if (choice._tag === "Ambiguous") expect(choice.detail).toContain("vm-a, vm-b")
  })
})
