/**
 * Network and sharing settings that cannot work stop the run before it defines a domain, with a
 * message that names the variable. A bridge or direct device that does not exist fails the
 * configuration check (exit 1). A host port that another program holds, a privileged port
 * without CAP_NET_BIND_SERVICE fail the host checks (exit 3). virtiofs without the namespaces of
 * virtiofsd's own sandbox falls back to its chroot sandbox. No guest boots: each run is the compiled binary against the real
 * libvirtd.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { createSocket, type Socket } from "node:dgram"
import { existsSync, mkdirSync } from "node:fs"
import { createServer, type Server } from "node:net"
import { join } from "node:path"
import { spawn, spawnSync } from "bun"
import { freeUdpPort } from "./network/hostNetwork.ts"
import { binary, freePort, guestImage, makeWorkDir, removeDir } from "./support/harness.ts"

/** Long enough for libvirtd's checks and the KVM probe on a loaded machine. */
const runTimeoutMs = 180_000
/** Leaves time to kill a run that did not stop by itself before the test gives up. */
const testTimeoutMs = runTimeoutMs + 30_000

let workDir: string
let image: string
const names: Array<string> = []

interface Outcome {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs vm-runner until it exits, optionally under `setpriv` with capabilities removed from the
 * bounding set, so that neither vm-runner nor anything it starts has them.
 */
const runVmRunner = async (
  env: Record<string, string>,
  dropCapabilities: ReadonlyArray<string> = [],
  args: ReadonlyArray<string> = []
): Promise<Outcome> => {
  const prefix =
    dropCapabilities.length === 0
      ? []
      : [
          "setpriv",
          `--bounding-set=${dropCapabilities.map((cap) => `-${cap}`).join(",")}`,
          `--inh-caps=${dropCapabilities.map((cap) => `-${cap}`).join(",")}`
        ]
  const child = spawn([...prefix, binary, ...args], {
    env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe"
  })
  const timer = setTimeout(() => child.kill("SIGKILL"), runTimeoutMs)
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited
  ])
  clearTimeout(timer)
  return { exitCode, stdout, stderr }
}

const baseEnv = async (name: string, extra: Record<string, string>) => {
  names.push(name)
  return {
    BOOT_FROM: image,
    DATA_DIR: join(workDir, "data"),
    GUEST_NAME: name,
    MEMORY: "1024",
    NO_CONSOLE: "1",
    PERSIST: "0",
    SSH_PORT: String(await freePort()),
    ...extra
  }
}

/** True when libvirt has a domain of this name. */
const domainExists = (name: string) =>
  spawnSync(["virsh", "-c", "qemu:///system", "domstate", name], { stderr: "ignore" }).exitCode ===
  0

/** Listens on a TCP port of every IPv4 address until closed. */
const holdTcpPort = (port: number) =>
  new Promise<Server>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(port, "0.0.0.0", () => resolve(server))
  })

const holdUdpPort = (port: number) =>
  new Promise<Socket>((resolve, reject) => {
    const socket = createSocket("udp4")
    socket.once("error", reject)
    socket.bind(port, "0.0.0.0", () => resolve(socket))
  })

beforeAll(() => {
  workDir = makeWorkDir("net-errors")
  image = guestImage()
})

afterAll(() => {
  for (const name of names) {
    spawnSync(["virsh", "-c", "qemu:///system", "destroy", name], { stderr: "ignore" })
    spawnSync(["virsh", "-c", "qemu:///system", "undefine", name, "--nvram"], { stderr: "ignore" })
  }
  removeDir(workDir)
})

describe("configuration errors", () => {
  test(
    "bridge that does not exist",
    async () => {
      const name = `net-nobridge-${process.pid}`
      const outcome = await runVmRunner(
        await baseEnv(name, { NETWORK_MODE: "bridge", NETWORK_BRIDGE: "vmrt-nobr0" })
      )
      expect(outcome.stderr).toContain("NETWORK_BRIDGE")
      expect(outcome.stderr).toContain("vmrt-nobr0 does not exist")
      expect(outcome.exitCode).toBe(1)
      expect(domainExists(name)).toBe(false)
    },
    testTimeoutMs
  )

  test(
    "direct device that does not exist",
    async () => {
      const name = `net-nodirect-${process.pid}`
      const outcome = await runVmRunner(
        await baseEnv(name, {
          NETWORK2_MODE: "direct",
          NETWORK2_DIRECT_DEV: "vmrt-nodev0"
        })
      )
      expect(outcome.stderr).toContain("NETWORK2_DIRECT_DEV")
      expect(outcome.stderr).toContain("needs an existing host network interface")
      expect(outcome.exitCode).toBe(1)
      expect(domainExists(name)).toBe(false)
    },
    testTimeoutMs
  )
})

describe("host checks before the domain is defined", () => {
  test(
    "TCP forward to a port in use",
    async () => {
      const name = `net-tcpbusy-${process.pid}`
      const port = await freePort()
      const holder = await holdTcpPort(port)
      try {
        const outcome = await runVmRunner(await baseEnv(name, { PORT_FWD: `${port}:80` }))
        expect(outcome.stderr).toContain(
          `PORT_FWD ${port}/tcp: host TCP port ${port} is already in use`
        )
        expect(outcome.exitCode).toBe(3)
        expect(domainExists(name)).toBe(false)
        expect(existsSync(join(workDir, "data", "vms", name, "domain.xml"))).toBe(false)
      } finally {
        holder.close()
      }
    },
    testTimeoutMs
  )

  test(
    "UDP forward to a port in use",
    async () => {
      const name = `net-udpbusy-${process.pid}`
      const port = await freeUdpPort()
      const holder = await holdUdpPort(port)
      try {
        const outcome = await runVmRunner(await baseEnv(name, { PORT_FWD: `${port}:53/udp` }))
        expect(outcome.stderr).toContain(
          `PORT_FWD ${port}/udp: host UDP port ${port} is already in use`
        )
        expect(outcome.exitCode).toBe(3)
        expect(domainExists(name)).toBe(false)
      } finally {
        holder.close()
      }
    },
    testTimeoutMs
  )

  test(
    "privileged port without the capability",
    async () => {
      const start = Number(
        spawnSync(["sysctl", "-n", "net.ipv4.ip_unprivileged_port_start"]).stdout.toString()
      )
      // Port 1000 is privileged wherever the kernel default (1024) applies. A host that lowers
      // the threshold lets anyone bind it, so there is nothing to check there.
      expect(start).toBeGreaterThan(1000)
      const name = `net-privport-${process.pid}`
      const outcome = await runVmRunner(await baseEnv(name, { PORT_FWD: "1000:80" }), [
        "net_bind_service"
      ])
      expect(outcome.stderr).toContain("PORT_FWD 1000/tcp: host TCP port 1000 is below")
      expect(outcome.stderr).toContain("vm-runner lacks CAP_NET_BIND_SERVICE")
      expect(outcome.exitCode).toBe(3)
      expect(domainExists(name)).toBe(false)
    },
    testTimeoutMs
  )

  test(
    "virtiofs without namespaces confines virtiofsd with chroot",
    async () => {
      const name = `share-nons-${process.pid}`
      const source = join(workDir, "share-nons")
      mkdirSync(source, { recursive: true })
      // Without CAP_SYS_ADMIN, unshare(2) of mount, PID and network namespaces fails, as in a
      // container started with Docker's defaults. Inside a container vm-runner picks chroot
      // without probing, so the warning appears only on a bare host.
      const outcome = await runVmRunner(
        await baseEnv(name, { FILESYSTEM_SOURCE: source }),
        ["sys_admin"],
        ["--show-xml"]
      )
      expect(outcome.exitCode).toBe(0)
      expect(outcome.stdout).toMatch(/<sandbox mode=['"]chroot['"]\s*\/>/)
      if (!existsSync("/.dockerenv") && !existsSync("/run/.containerenv")) {
        expect(outcome.stderr).toContain("it confines itself with chroot instead")
      }
      expect(domainExists(name)).toBe(false)
    },
    testTimeoutMs
  )
})
