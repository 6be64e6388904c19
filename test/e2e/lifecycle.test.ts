/**
 * Start and stop at awkward moments, through the compiled binary and a real guest: legacy BIOS
 * boot, SIGTERM while the guest is still booting, a guest that powers itself off, and a
 * launcher killed with SIGKILL whose leftover domain the next run replaces.
 */
import { afterAll, beforeAll, expect, test } from "bun:test"
import { join } from "node:path"
import { spawnSync } from "bun"
import {
  freePort,
  guestExec,
  guestImage,
  makeWorkDir,
  removeDir,
  reportTime,
  VmRun
} from "./support/harness.ts"

const bootTimeout = 15 * 60_000
let workDir: string
let image: string
const names: Array<string> = []

const baseEnv = async (name: string, extra: Record<string, string> = {}) => {
  names.push(name)
  return {
    BOOT_FROM: image,
    DATA_DIR: join(workDir, "data"),
    GUEST_NAME: name,
    MEMORY: "1024",
    CPUS: "2",
    NO_CONSOLE: "1",
    SSH_PORT: String(await freePort()),
    GUEST_PASSWORD: "lifecycle-test",
    ...extra
  }
}

const diskOf = (name: string) => join(workDir, "data", "vms", name, "disk.qcow2")

beforeAll(() => {
  workDir = makeWorkDir("lifecycle")
  image = guestImage()
})

afterAll(() => {
  for (const name of names) {
    spawnSync(["virsh", "-c", "qemu:///system", "destroy", name])
    spawnSync(["virsh", "-c", "qemu:///system", "undefine", name, "--keep-nvram"])
  }
  removeDir(workDir)
})

test(
  "legacy BIOS boot reaches the agent",
  async () => {
    const name = `e2e-bios-${process.pid}`
    const started = performance.now()
    const run = new VmRun(
      await baseEnv(name, { BOOT_MODE: "legacy", PERSIST: "0", CLOUD_INIT: "0" })
    )
    await run.waitForLog(/the guest agent answers/, bootTimeout)
    reportTime("legacy BIOS boot to agent", started)
    const efi = await guestExec(["--domain", name, "test -d /sys/firmware/efi"])
    expect(efi.exitCode).toBe(1)
    // Stop in steady state: a guest still starting services finishes those first.
    await guestExec(["--domain", name, "systemctl is-system-running --wait"])
    expect(await run.stop("SIGTERM")).toBe(0)
    expect(run.stderr).toContain("the guest powered off")
  },
  bootTimeout + 300_000
)

test(
  "SIGTERM during boot stops cleanly",
  async () => {
    const name = `e2e-early-${process.pid}`
    // The guest acts on the ACPI power button once systemd-logind runs. Under TCG on a busy
    // 2-core machine that took from 60 s to over 90 s after the domain started, so the default
    // SHUTDOWN_TIMEOUT of 90 s could expire first.
    const run = new VmRun(
      await baseEnv(name, { PERSIST: "1", CLOUD_INIT: "0", SHUTDOWN_TIMEOUT: "300" })
    )
    await run.waitForLog(/domain started/, bootTimeout)
    const started = performance.now()
    const code = await run.stop("SIGTERM", 400_000)
    reportTime("SIGTERM during boot to exit", started)
    expect(run.stderr).toContain("the guest powered off")
    expect(code).toBe(0)
    expect(spawnSync(["qemu-img", "check", diskOf(name)]).exitCode).toBe(0)
  },
  bootTimeout + 300_000
)

test(
  "a guest that powers itself off ends the run",
  async () => {
    const name = `e2e-poweroff-${process.pid}`
    const run = new VmRun(await baseEnv(name, { PERSIST: "0", CLOUD_INIT: "0" }))
    await run.waitForLog(/the guest agent answers/, bootTimeout)
    await guestExec(["--domain", name, "systemctl poweroff"])
    expect(await run.exited(300_000)).toBe(0)
    expect(run.stderr).toContain("the guest powered off")
  },
  bootTimeout + 300_000
)

test(
  "a run after SIGKILL replaces the leftover domain",
  async () => {
    const name = `e2e-killed-${process.pid}`
    const env = await baseEnv(name, { PERSIST: "1", CLOUD_INIT: "0" })
    const first = new VmRun(env)
    await first.waitForLog(/the guest agent answers/, bootTimeout)
    first.process.kill("SIGKILL")
    await first.exited(60_000)
    const state = spawnSync(["virsh", "-c", "qemu:///system", "domstate", name]).stdout.toString()
    expect(state.trim()).toBe("running")

    const second = new VmRun(env)
    await second.waitForLog(/the guest agent answers/, bootTimeout)
    expect(second.stderr).toContain("left by an earlier run")
    const result = await guestExec(["--domain", name, "echo alive"])
    expect(result.stdout.toString()).toBe("alive\n")
    await guestExec(["--domain", name, "systemctl is-system-running --wait"])
    expect(await second.stop("SIGTERM")).toBe(0)
  },
  2 * bootTimeout + 300_000
)
