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
  // libvirt runs swtpm as tss, so the VM directory must be reachable for tss. A private work
  // directory would keep the TPM state in /var/lib/libvirt/swtpm instead.
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

const privateName = `e2e-tpm-private-${process.pid}`
let privateDir: string | undefined

afterAll(() => {
  for (const domain of [name, privateName]) {
    spawnSync(["virsh", "-c", "qemu:///system", "destroy", domain])
    spawnSync(["virsh", "-c", "qemu:///system", "undefine", domain, "--nvram", "--tpm"])
  }
  removeDir(workDir)
  if (privateDir !== undefined) removeDir(privateDir)
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

test("TPM state stays with libvirt when tss cannot enter DATA_DIR", async () => {
  // makeWorkDir creates the directory with mode 0700, so tss cannot enter the VM directory.
  privateDir = makeWorkDir("tpm-private")
  const run = new VmRun({
    ...env,
    DATA_DIR: join(privateDir, "data"),
    GUEST_NAME: privateName,
    BOOT_MODE: "uefi",
    TPM: "1",
    PERSIST: "0",
    SHUTDOWN_TIMEOUT: "5",
    SSH_PORT: String(await freePort())
  })
  await run.waitForLog(/domain started/, 120_000)
  expect(run.stderr).toContain("TPM state stays in /var/lib/libvirt/swtpm/")
  expect(run.stderr).toContain(`libvirt runs swtpm as tss, which may not enter ${privateDir}`)
  const uuid = readFileSync(join(privateDir, "data", "vms", privateName, "uuid"), "utf8").trim()
  expect(lstatSync(`/var/lib/libvirt/swtpm/${uuid}`).isDirectory()).toBe(true)
  await run.stop("SIGTERM")
}, 300_000)
