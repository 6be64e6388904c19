/**
 * The main job, end to end: the compiled binary downloads the test guest from a loopback HTTP
 * server through a catalogue entry with its sha256, boots it under UEFI with real libvirtd and
 * QEMU, and every check below shares that one boot. The last checks stop it with SIGTERM and
 * boot the persistent disk a second time.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { spawnSync } from "bun"
import {
  binary,
  freePort,
  guestExec,
  guestImage,
  makeWorkDir,
  removeDir,
  reportTime,
  serveFile,
  sha256Of,
  stopIfRunning,
  VmRun,
  writeTestCatalogue
} from "./support/harness.ts"

const password = "e2e-Secret-42"
const bootTimeout = 15 * 60_000
let workDir: string
let server: ReturnType<typeof serveFile>
let env: Record<string, string>
let run: VmRun
let sshPort: number
let keyPath: string
let name: string

const ssh = (args: ReadonlyArray<string>) =>
  spawnSync(
    [
      "ssh",
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "ConnectTimeout=20",
      "-o",
      "LogLevel=ERROR",
      "-p",
      String(sshPort),
      ...args
    ],
    { timeout: 60_000 }
  )

beforeAll(async () => {
  const started = performance.now()
  workDir = makeWorkDir("boot")
  const image = guestImage()
  server = serveFile(image)
  keyPath = join(workDir, "id_ed25519")
  spawnSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keyPath])
  sshPort = await freePort()
  name = `e2e-boot-${process.pid}`
  env = {
    DISTROS_FILE: writeTestCatalogue(workDir, server.url, sha256Of(image)),
    DISTRO: "test-debian-12",
    DATA_DIR: join(workDir, "data"),
    GUEST_NAME: name,
    PERSIST: "1",
    MEMORY: "1024",
    CPUS: "2",
    NO_CONSOLE: "1",
    SSH_PORT: String(sshPort),
    SSH_PUBKEY: readFileSync(`${keyPath}.pub`, "utf8").trim(),
    GUEST_PASSWORD: password
  }
  run = new VmRun(env)
  await run.waitForLog(/cloud-init finished/, bootTimeout)
  reportTime("UEFI boot to cloud-init done", started)
}, bootTimeout + 60_000)

afterAll(async () => {
  await stopIfRunning(run)
  server?.stop()
  spawnSync(["virsh", "-c", "qemu:///system", "undefine", name, "--keep-nvram"])
  if (workDir !== undefined) removeDir(workDir)
})

describe("first boot", () => {
  test("downloads and verifies the image", () => {
    expect(run.stderr).toContain("checksum verified")
    expect(server.requests()).toBeGreaterThan(0)
  })

  test("reports the boot phases", () => {
    expect(run.stderr).toMatch(/the kernel started \(\d/)
    expect(run.stderr).toMatch(/the guest agent answers \(\d/)
    const report = JSON.parse(
      readFileSync(join(env.DATA_DIR as string, "state/boot-reports", `${name}.json`), "utf8")
    )
    expect(report.secondsSinceStart.agent).toBeGreaterThan(0)
    expect(report.secondsSinceStart.cloudInit).toBeGreaterThanOrEqual(
      report.secondsSinceStart.agent
    )
  })

  test("never prints the password", () => {
    expect(run.stderr).not.toContain(password)
    expect(run.stdout).not.toContain(password)
  })

  test("health reports healthy", () => {
    const result = spawnSync([binary, "health", "--cloud-init", "--domain", name], {
      env: { ...process.env }
    })
    expect(result.stdout.toString()).toContain(name)
    expect(result.exitCode).toBe(0)
  })
})

describe("guest-exec", () => {
  test("finds the domain without --domain", async () => {
    // Several VMs may run on a developer's machine; GUEST_NAME picks this one, as docker exec
    // passes the container's variables on.
    const result = await guestExec(["uname -a"], { env: { GUEST_NAME: name } })
    expect(result.stdout.toString()).toContain("Linux")
    expect(result.exitCode).toBe(0)
  })

  test("returns the exit code 42", async () => {
    const result = await guestExec(["--domain", name, "exit 42"])
    expect(result.exitCode).toBe(42)
  })

  test("runs several arguments without a shell", async () => {
    const result = await guestExec(["--domain", name, "ls", "-la", "/tmp"])
    expect(result.stdout.toString()).toContain("..")
    expect(result.exitCode).toBe(0)
  })

  test("keeps stdout and stderr apart", async () => {
    const result = await guestExec(["--domain", name, "echo to-out; echo to-err >&2"])
    expect(result.stdout.toString()).toBe("to-out\n")
    expect(result.stderr).toContain("to-err")
  })

  test("passes standard input", async () => {
    const result = await guestExec(["--domain", name, "cat"], { stdin: "hello from the host\n" })
    expect(result.stdout.toString()).toBe("hello from the host\n")
  })

  test("returns 5 MB of output with --spool", async () => {
    const command = "head -c 5000000 /dev/zero | tr '\\0' 'a'"
    const result = await guestExec(["--domain", name, "--spool", command])
    expect(result.stdout.length).toBe(5_000_000)
    expect(result.stdout.every((byte) => byte === 0x61)).toBe(true)
    expect(result.exitCode).toBe(0)
  }, 120_000)

  test("names --spool when output is too large", async () => {
    const result = await guestExec(["--domain", name, "head -c 5000000 /dev/zero"])
    expect(result.stderr).toContain("--spool")
    expect(result.exitCode).toBe(125)
  }, 120_000)

  test("waits for a 30 s command", async () => {
    const result = await guestExec(["--domain", name, "sleep 30; echo finished"])
    expect(result.stdout.toString()).toBe("finished\n")
    expect(result.exitCode).toBe(0)
  }, 120_000)

  test("reports a signal as 128+N", async () => {
    const result = await guestExec(["--domain", name, "kill -9 $$"])
    expect(result.exitCode).toBe(137)
  })
})

describe("login", () => {
  test("accepts the SSH key on the forwarded port", () => {
    const result = ssh([
      "-i",
      keyPath,
      "-o",
      "PasswordAuthentication=no",
      "user@127.0.0.1",
      "id -un"
    ])
    expect(result.stdout.toString().trim()).toBe("user")
  })

  test("accepts the password on the forwarded port", () => {
    const result = spawnSync(
      [
        "sshpass",
        "-p",
        password,
        "ssh",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "LogLevel=ERROR",
        "-p",
        String(sshPort),
        "user@127.0.0.1",
        "sudo -n true && echo sudo-ok"
      ],
      { timeout: 60_000 }
    )
    expect(result.stdout.toString().trim()).toBe("sudo-ok")
  })
})

describe("plan and definition", () => {
  test("--show-xml matches the defined XML", () => {
    const shown = spawnSync([binary, "--show-xml"], { env: { ...process.env, ...env } })
    const defined = readFileSync(join(env.DATA_DIR as string, "vms", name, "domain.xml"), "utf8")
    expect(shown.stdout.toString().trim()).toBe(defined.trim())
  })

  test("--dry-run names the defined domain", () => {
    const dryRun = spawnSync([binary, "--dry-run"], { env: { ...process.env, ...env } })
    const text = dryRun.stdout.toString()
    const uuid = readFileSync(join(env.DATA_DIR as string, "vms", name, "uuid"), "utf8").trim()
    expect(text).toContain(uuid)
    // The running VM holds its directory and its SSH port, so exactly those checks fail.
    expect(text).toMatch(/FAIL\s+VM directory/)
    expect(text).toMatch(/FAIL\s+SSH_PORT/)
  })
})

describe("persistence", () => {
  test("SIGTERM shuts the guest down cleanly", async () => {
    const marker = await guestExec([
      "--domain",
      name,
      "echo persisted-marker > /root/marker && sync"
    ])
    expect(marker.exitCode).toBe(0)
    const started = performance.now()
    const code = await run.stop("SIGTERM")
    reportTime("SIGTERM to exit", started)
    expect(run.stderr).toContain("the guest powered off")
    expect(code).toBe(0)
    const check = spawnSync([
      "qemu-img",
      "check",
      join(env.DATA_DIR as string, "vms", name, "disk.qcow2")
    ])
    expect(check.exitCode).toBe(0)
  }, 300_000)

  test(
    "a restart keeps the file and skips the download",
    async () => {
      const requestsBefore = server.requests()
      const started = performance.now()
      run = new VmRun(env)
      await run.waitForLog(/the guest agent answers/, bootTimeout)
      reportTime("second boot to agent", started)
      expect(run.stderr).toContain("cached")
      expect(server.requests() - requestsBefore).toBeLessThanOrEqual(1)
      const result = await guestExec(["--domain", name, "cat /root/marker"])
      expect(result.stdout.toString()).toBe("persisted-marker\n")
      expect(await run.stop("SIGTERM")).toBe(0)
      expect(existsSync(join(env.DATA_DIR as string, "vms", name, "disk.qcow2"))).toBe(true)
    },
    bootTimeout + 300_000
  )
})
