/**
 * A user's own cloud-config that sets runcmd, users, write_files and ssh_pwauth must add to the
 * built-in configuration, not replace it: the login user, the guest agent (and so guest-exec)
 * and the user's own settings all work in one real guest.
 */
import { afterAll, beforeAll, expect, test } from "bun:test"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { spawnSync } from "bun"
import {
  freePort,
  guestExec,
  guestImage,
  makeWorkDir,
  removeDir,
  reportTime,
  stopIfRunning,
  VmRun
} from "./support/harness.ts"

const bootTimeout = 15 * 60_000
const name = `e2e-userdata-${process.pid}`
let workDir: string
let run: VmRun

const exec = (command: string) => guestExec(["--domain", name, command])

beforeAll(async () => {
  workDir = makeWorkDir("userdata")
  const userData = join(workDir, "user-data.yaml")
  writeFileSync(
    userData,
    [
      "#cloud-config",
      "users:",
      "  - name: alice",
      "    shell: /bin/sh",
      "runcmd:",
      "  - [sh, -c, 'echo from-user-runcmd > /root/user-runcmd']",
      "write_files:",
      "  - path: /etc/user-file",
      "    content: from-user-write-files",
      ""
    ].join("\n")
  )
  const started = performance.now()
  run = new VmRun({
    BOOT_FROM: guestImage(),
    DATA_DIR: join(workDir, "data"),
    GUEST_NAME: name,
    PERSIST: "0",
    MEMORY: "1024",
    CPUS: "2",
    NO_CONSOLE: "1",
    SSH_PORT: String(await freePort()),
    GUEST_PASSWORD: "userdata-test",
    CLOUD_INIT_USER_DATA: userData
  })
  await run.waitForLog(/cloud-init finished/, bootTimeout)
  reportTime("boot with user-data to cloud-init done", started)
}, bootTimeout + 60_000)

afterAll(async () => {
  await stopIfRunning(run)
  spawnSync(["virsh", "-c", "qemu:///system", "undefine", name, "--keep-nvram"])
  removeDir(workDir)
})

test("cloud-init read the seed without errors", () => {
  expect(run.stderr).not.toContain("without reading the seed")
  expect(run.stderr).not.toMatch(/WARN .*cloud-init:/)
})

test("the built-in login user exists", async () => {
  const result = await exec("id -un user && sudo -n -u user sudo -n true && echo sudo-ok")
  expect(result.stdout.toString()).toContain("sudo-ok")
})

test("the user's own user exists", async () => {
  const result = await exec("getent passwd alice")
  expect(result.exitCode).toBe(0)
})

test("the user's runcmd ran", async () => {
  const result = await exec("cat /root/user-runcmd")
  expect(result.stdout.toString()).toBe("from-user-runcmd\n")
})

test("the user's write_files wrote", async () => {
  const result = await exec("cat /etc/user-file")
  expect(result.stdout.toString()).toBe("from-user-write-files")
})

test("the guest agent kept running", async () => {
  const result = await exec("systemctl is-active qemu-guest-agent")
  expect(result.stdout.toString().trim()).toBe("active")
})

test("stops cleanly", async () => {
  expect(await run.stop("SIGTERM")).toBe(0)
}, 300_000)
