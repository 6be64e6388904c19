/**
 * `guest-exec --wait` started before any vm-runner has written its run record keeps looking
 * for one until the wait ends, as the quick start relies on, instead of failing at once.
 */
import { afterAll, expect, test } from "bun:test"
import { spawnSync } from "bun"
import { binary, makeWorkDir, removeDir } from "./support/harness.ts"

const runDir = makeWorkDir("run-records")

afterAll(() => removeDir(runDir))

const guestExec = (args: ReadonlyArray<string>) => {
  const started = performance.now()
  const result = spawnSync([binary, "guest-exec", ...args], {
    env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", VM_RUNNER_RUN_DIR: runDir }
  })
  return {
    exitCode: result.exitCode,
    stderr: result.stderr.toString(),
    seconds: (performance.now() - started) / 1000
  }
}

test("--wait looks for a VM until it ends", () => {
  const result = guestExec(["--wait=2", "true"])
  expect(result.exitCode).toBe(127)
  expect(result.stderr).toContain("no vm-runner VM is running here")
  expect(result.seconds).toBeGreaterThanOrEqual(1.9)
})

test("without --wait, no VM fails at once", () => {
  const result = guestExec(["true"])
  expect(result.exitCode).toBe(127)
  expect(result.seconds).toBeLessThan(1.9)
})
