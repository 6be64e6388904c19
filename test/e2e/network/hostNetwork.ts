/**
 * Test networks on the host: a bridge, veth pairs, a network namespace and dnsmasq DHCP servers.
 * Every device and namespace is named with the `vmrt` prefix and a per-run number, recorded in
 * a `TestNetwork`, and removed by `remove()`, which also stops the dnsmasq processes it started
 * by their PIDs. Nothing here changes a device, route or firewall rule the test did not create.
 */
import { createSocket } from "node:dgram"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { type Subprocess, spawn, spawnSync } from "bun"

/** Linux limits interface names to 15 bytes (IFNAMSIZ 16 with the NUL). */
const maximumNameLength = 15

/** How long dnsmasq may take to bind its DHCP socket. */
const dnsmasqStartTimeoutMs = 10_000

/** Runs a command and throws with its stderr when it fails. */
export const run = (argv: ReadonlyArray<string>): string => {
  const result = spawnSync([...argv], { stdout: "pipe", stderr: "pipe" })
  if (result.exitCode !== 0) {
    throw new Error(`${argv.join(" ")} failed (${result.exitCode}): ${result.stderr.toString()}`)
  }
  return result.stdout.toString()
}

/** Runs a command for cleanup, where a failure (the object is already gone) does not matter. */
const runQuietly = (argv: ReadonlyArray<string>) =>
  spawnSync([...argv], { stdout: "ignore", stderr: "ignore" })

/** A DHCP server for one interface, started and stopped by this test. */
export interface DhcpServer {
  readonly process: Subprocess
  readonly leaseFile: string
  readonly logFile: string
}

/** One IPv4 /24 of a test network: the server's address and the range it leases from. */
export interface Subnet {
  /** The first three octets, such as `198.18.21`. */
  readonly prefix: string
}

const serverAddress = (subnet: Subnet) => `${subnet.prefix}.1`

/**
 * Devices, namespaces and servers of one test run. Addresses come from 198.18.0.0/15, which
 * RFC 2544 reserves for benchmark networks, so they collide with no real network.
 */
export class TestNetwork {
  private readonly links: Array<string> = []
  private readonly namespaces: Array<string> = []
  private readonly servers: Array<DhcpServer> = []

  constructor(
    /** Distinguishes this run's names from a concurrent run's, such as the process ID. */
    readonly suffix: string,
    /** Directory for lease files and dnsmasq logs. */
    readonly dir: string
  ) {}

  /** Names a device or namespace `vmrt-<role><suffix>`, within the 15-byte limit. */
  name(role: string): string {
    const name = `vmrt-${role}${this.suffix}`
    if (name.length > maximumNameLength) throw new Error(`interface name too long: ${name}`)
    return name
  }

  /**
   * Creates a bridge with `subnet`'s first address and IPv6 off (no router advertisements or
   * link-local routes leak onto the host). The bridge is up even without ports.
   */
  addBridge(role: string, subnet: Subnet): string {
    const bridge = this.name(role)
    run(["ip", "link", "add", bridge, "type", "bridge"])
    this.links.push(bridge)
    run(["sysctl", "-q", "-w", `net.ipv6.conf.${bridge}.disable_ipv6=1`])
    run(["ip", "addr", "add", `${serverAddress(subnet)}/24`, "dev", bridge])
    run(["ip", "link", "set", bridge, "up"])
    return bridge
  }

  /** Creates a network namespace with its loopback up. */
  addNamespace(role: string): string {
    const namespace = this.name(role)
    run(["ip", "netns", "add", namespace])
    this.namespaces.push(namespace)
    run(["ip", "-n", namespace, "link", "set", "lo", "up"])
    return namespace
  }

  /**
   * Creates a veth pair for a macvtap NIC. The host end stays in this namespace, up, without
   * addresses and with IPv6 off. The peer moves into `namespace` with `subnet`'s first address.
   * Removing the host end removes the peer too.
   */
  addVethInto(hostRole: string, peerRole: string, namespace: string, subnet: Subnet): string {
    const hostEnd = this.name(hostRole)
    const peer = this.name(peerRole)
    run(["ip", "link", "add", hostEnd, "type", "veth", "peer", "name", peer])
    this.links.push(hostEnd)
    run(["sysctl", "-q", "-w", `net.ipv6.conf.${hostEnd}.disable_ipv6=1`])
    run(["ip", "link", "set", peer, "netns", namespace])
    run(["ip", "-n", namespace, "addr", "add", `${serverAddress(subnet)}/24`, "dev", peer])
    run(["ip", "-n", namespace, "link", "set", peer, "up"])
    run(["ip", "link", "set", hostEnd, "up"])
    return peer
  }

  /**
   * Starts dnsmasq as a DHCP server only (no DNS, `--port=0`) on `device`, in `namespace` when
   * one is given. `ip netns exec` execs dnsmasq in place, so the PID is dnsmasq's own.
   */
  async startDhcp(device: string, subnet: Subnet, namespace?: string): Promise<DhcpServer> {
    const leaseFile = join(this.dir, `${device}.leases`)
    const logFile = join(this.dir, `${device}.log`)
    const dnsmasq = [
      "dnsmasq",
      "--keep-in-foreground",
      "--conf-file=/dev/null",
      "--no-hosts",
      "--no-resolv",
      "--port=0",
      "--bind-interfaces",
      `--interface=${device}`,
      "--except-interface=lo",
      `--dhcp-range=${subnet.prefix}.50,${subnet.prefix}.99,255.255.255.0,10m`,
      "--dhcp-authoritative",
      "--no-ping",
      `--dhcp-leasefile=${leaseFile}`,
      `--log-facility=${logFile}`,
      "--log-dhcp",
      "--user=root"
    ]
    const argv = namespace === undefined ? dnsmasq : ["ip", "netns", "exec", namespace, ...dnsmasq]
    const process = spawn(argv, { stdout: "ignore", stderr: "pipe" })
    const server = { process, leaseFile, logFile }
    this.servers.push(server)
    const deadline = performance.now() + dnsmasqStartTimeoutMs
    while (performance.now() < deadline) {
      if (process.exitCode !== null) {
        const stderr = await new Response(process.stderr).text()
        throw new Error(`dnsmasq on ${device} exited (${process.exitCode}): ${stderr}`)
      }
      if (readText(logFile).includes("DHCP, IP range")) return server
      await Bun.sleep(100)
    }
    throw new Error(`dnsmasq on ${device} did not start within ${dnsmasqStartTimeoutMs} ms`)
  }

  /** Stops the DHCP servers by PID and deletes the devices and namespaces, newest first. */
  async remove(): Promise<void> {
    for (const server of this.servers.splice(0)) {
      if (server.process.exitCode === null) server.process.kill("SIGTERM")
      await server.process.exited
    }
    for (const link of this.links.splice(0).reverse()) runQuietly(["ip", "link", "del", link])
    for (const namespace of this.namespaces.splice(0).reverse()) {
      runQuietly(["ip", "netns", "del", namespace])
    }
  }
}

const readText = (path: string): string => {
  try {
    return readFileSync(path, "utf8")
  } catch {
    return ""
  }
}

/** Returns the IPv4 address dnsmasq leased to `mac`, from its lease file. */
export const leasedAddress = (server: DhcpServer, mac: string): string | undefined => {
  // Each line: expiry time, MAC, IP address, host name, client id.
  for (const line of readText(server.leaseFile).split("\n")) {
    const [, leaseMac, address] = line.split(" ")
    if (leaseMac?.toLowerCase() === mac.toLowerCase()) return address
  }
  return undefined
}

/** Pings `address` three times, from `namespace` when one is given; returns ping's exit code. */
export const ping = (address: string, namespace?: string): number => {
  const argv = ["ping", "-c", "3", "-W", "5", address]
  const full = namespace === undefined ? argv : ["ip", "netns", "exec", namespace, ...argv]
  return spawnSync(full, { stdout: "ignore", stderr: "ignore" }).exitCode
}

/** Returns a UDP port that was free on every IPv4 address a moment ago. */
export const freeUdpPort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const socket = createSocket("udp4")
    socket.once("error", reject)
    socket.bind(0, "0.0.0.0", () => {
      const { port } = socket.address()
      socket.close(() => resolve(port))
    })
  })
