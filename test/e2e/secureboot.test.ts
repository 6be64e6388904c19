/**
 * BOOT_MODE=secure with PERSIST=1: the guest boots with Secure Boot on and sees a TPM, and the
 * TPM's state lives in the VM directory, where a second run finds it again.
 */
import { afterAll, beforeAll, expect, test } from "bun:test"
import { chmodSync, existsSync, lstatSync, readFileSync, readlinkSync } from "node:fs"
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
const name = `e2e-secure-${process.pid}`
let workDir: string
let env: Record<string, string>

const vmDir = () => join(workDir, "data", "vms", name)
const exec = (command: string) => guestExec(["--domain", name, command])

/** Boots the guest, runs `checks` once the agent responds, and stops it cleanly. */
const bootAndCheck = async (label: string, checks: () => Promise<void>) => {
  const started = performance.now()
  const run = new VmRun(env)
  await run.waitForLog(/the guest agent answers/, bootTimeout)
  reportTime(`${label} to agent`, started)
  await checks()
  await exec("systemctl is-system-running --wait")
  expect(await run.stop("SIGTERM")).toBe(0)
}

beforeAll(async () => {
  workDir = makeWorkDir("secure")
  // libvirt runs swtpm as tss, which must be able to pass through to the VM directory; a
  // private work directory keeps the TPM state in /var/lib/libvirt/swtpm instead, with a warning.
  chmodSync(workDir, 0o711)
  env = {
    BOOT_FROM: guestImage(),
    DATA_DIR: join(workDir, "data"),
    GUEST_NAME: name,
    BOOT_MODE: "secure",
    PERSIST: "1",
    CLOUD_INIT: "0",
    MEMORY: "1024",
    CPUS: "2",
    NO_CONSOLE: "1",
    SSH_PORT: String(await freePort())
  }
})

afterAll(() => {
  spawnSync(["virsh", "-c", "qemu:///system", "destroy", name])
  spawnSync(["virsh", "-c", "qemu:///system", "undefine", name, "--nvram", "--tpm"])
  removeDir(workDir)
})

test(
  "secure boot guest sees its TPM",
  async () => {
    await bootAndCheck("Secure Boot boot", async () => {
      // The last byte of the SecureBoot UEFI variable is 1 when Secure Boot is on.
      const secureBoot = await exec("od -An -tu1 /sys/firmware/efi/efivars/SecureBoot-*")
      expect(secureBoot.stdout.toString().trim().split(/\s+/).at(-1)).toBe("1")
      const tpm = await exec("test -c /dev/tpm0")
      expect(tpm.exitCode).toBe(0)
    })
  },
  bootTimeout + 300_000
)

test("TPM state lives in the VM directory", () => {
  const uuid = readFileSync(join(vmDir(), "uuid"), "utf8").trim()
  const link = `/var/lib/libvirt/swtpm/${uuid}`
  expect(lstatSync(link).isSymbolicLink()).toBe(true)
  expect(readlinkSync(link)).toBe(join(vmDir(), "tpm"))
  expect(existsSync(join(vmDir(), "tpm", "tpm2", "tpm2-00.permall"))).toBe(true)
  expect(existsSync(join(vmDir(), "nvram.fd"))).toBe(true)
})

test(
  "second run keeps the TPM state",
  async () => {
    await bootAndCheck("second Secure Boot boot", async () => {
      const tpm = await exec("test -c /dev/tpm0")
      expect(tpm.exitCode).toBe(0)
    })
    expect(existsSync(join(vmDir(), "tpm", "tpm2", "tpm2-00.permall"))).toBe(true)
    // libvirt runs swtpm_setup, which logs "Starting vTPM manufacturing", only for an empty
    // state directory.
    const setupLog = readFileSync(`/var/log/swtpm/libvirt/qemu/${name}-swtpm.log`, "utf8")
    expect(setupLog.match(/Starting vTPM manufacturing/g)?.length ?? 0).toBe(1)
  },
  bootTimeout + 300_000
)
