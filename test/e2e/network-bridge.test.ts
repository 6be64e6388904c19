/**
 * Bridge and direct (macvtap) NICs, proven from inside one running guest.
 *
 * The test builds its own networks and removes them afterwards:
 * - bridge mode: a bridge `vmrt-br<pid>` holding the DHCP server's address. The server sits on
 *   the bridge itself because a frame forwarded between two bridge ports passes the host's
 *   iptables FORWARD chain (br_netfilter), which Docker hosts set to DROP, while frames to the
 *   bridge's own address do not.
 * - direct mode: a veth pair whose host end `vmrt-mv<pid>` carries the macvtap NIC and whose
 *   other end sits in the namespace `vmrt-ns<pid>` with the DHCP server.
 * dnsmasq serves DHCP on both. The guest gets an address on each NIC and replies to a ping from
 * the bridge and from the namespace.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { spawnSync } from "bun"
import { guestIpv4, guestNics, nicByMac, resolvedConfig } from "./network/guest.ts"
import { type DhcpServer, leasedAddress, ping, TestNetwork } from "./network/hostNetwork.ts"
import {
  guestImage,
  makeWorkDir,
  removeDir,
  reportTime,
  stopIfRunning,
  VmRun
} from "./support/harness.ts"

const bootTimeout = 15 * 60_000
/** How long DHCP may take to give a NIC an address once cloud-init is done. */
const leaseTimeoutMs = 120_000

const name = `net-bridge-${process.pid}`
/** Keeps names within 15 bytes: `vmrt-br` plus at most 8 digits. */
const suffix = String(process.pid % 100_000_000)
const bridgeSubnet = { prefix: "198.18.21" }
const directSubnet = { prefix: "198.18.22" }

let workDir: string
let network: TestNetwork
let namespace: string
let bridgeDhcp: DhcpServer
let directDhcp: DhcpServer
let run: VmRun
let env: Record<string, string>
let macs: { readonly bridge: string; readonly direct: string }

beforeAll(async () => {
  const started = performance.now()
  workDir = makeWorkDir("net-bridge")
  network = new TestNetwork(suffix, workDir)
  const bridge = network.addBridge("br", bridgeSubnet)
  namespace = network.addNamespace("ns")
  const peer = network.addVethInto("mv", "mp", namespace, directSubnet)
  bridgeDhcp = await network.startDhcp(bridge, bridgeSubnet)
  directDhcp = await network.startDhcp(peer, directSubnet, namespace)

  env = {
    BOOT_FROM: guestImage(),
    DATA_DIR: join(workDir, "data"),
    GUEST_NAME: name,
    PERSIST: "0",
    MEMORY: "1024",
    CPUS: "2",
    NO_CONSOLE: "1",
    NETWORK_MODE: "bridge",
    NETWORK_BRIDGE: bridge,
    NETWORK2_MODE: "direct",
    NETWORK2_DIRECT_DEV: network.name("mv"),
    NETWORK2_MTU: "1280"
  }
  const nics = resolvedConfig(env).network.nics
  macs = { bridge: nics[0].mac, direct: nics[1].mac }
  run = new VmRun(env)
  await run.waitForLog(/cloud-init finished/, bootTimeout)
  reportTime("bridge and direct guest: boot to cloud-init done", started)
}, bootTimeout + 60_000)

afterAll(async () => {
  await stopIfRunning(run, "bridge and direct guest")
  spawnSync(["virsh", "-c", "qemu:///system", "undefine", name, "--nvram"], { stderr: "ignore" })
  await network?.remove()
  if (workDir !== undefined) removeDir(workDir)
})

/** Waits until dnsmasq has leased an address to `mac`, and returns it. */
const waitForLease = async (server: DhcpServer, mac: string): Promise<string> => {
  const deadline = performance.now() + leaseTimeoutMs
  while (performance.now() < deadline) {
    const address = leasedAddress(server, mac)
    if (address !== undefined) return address
    await Bun.sleep(1000)
  }
  throw new Error(`no DHCP lease for ${mac} in ${server.leaseFile}`)
}

describe("bridge NIC", () => {
  test(
    "gets an address from the bridge's DHCP server",
    async () => {
      const address = await waitForLease(bridgeDhcp, macs.bridge)
      const nic = nicByMac(await guestNics(name), macs.bridge)
      expect(await guestIpv4(name, nic.name)).toContain(address)
    },
    leaseTimeoutMs + 30_000
  )

  test(
    "answers a ping from the bridge",
    async () => {
      const address = await waitForLease(bridgeDhcp, macs.bridge)
      expect(ping(address)).toBe(0)
    },
    leaseTimeoutMs + 30_000
  )

  test("has the host's MTU without NETWORK_MTU", async () => {
    const hostMtu = defaultRouteMtu()
    const nic = nicByMac(await guestNics(name), macs.bridge)
    expect(nic.mtu).toBe(hostMtu)
    expect(nic.driver).toBe("virtio_net")
  })
})

describe("direct NIC", () => {
  test(
    "gets an address from the namespace's DHCP server",
    async () => {
      const address = await waitForLease(directDhcp, macs.direct)
      const nic = nicByMac(await guestNics(name), macs.direct)
      expect(await guestIpv4(name, nic.name)).toContain(address)
    },
    leaseTimeoutMs + 30_000
  )

  test(
    "answers a ping from the namespace",
    async () => {
      const address = await waitForLease(directDhcp, macs.direct)
      expect(ping(address, namespace)).toBe(0)
    },
    leaseTimeoutMs + 30_000
  )

  test("has NETWORK2_MTU", async () => {
    const nic = nicByMac(await guestNics(name), macs.direct)
    expect(nic.mtu).toBe(1280)
    expect(nic.operstate).toBe("up")
  })
})

/** Reads the MTU of the host's default IPv4 route, as vm-runner does. */
function defaultRouteMtu(): number {
  const lines = readFileSync("/proc/net/route", "utf8").trim().split("\n").slice(1)
  for (const line of lines) {
    const [device, destination, , , , , , mask] = line.trim().split(/\s+/)
    if (destination === "00000000" && mask === "00000000") {
      return Number(readFileSync(`/sys/class/net/${device}/mtu`, "utf8").trim())
    }
  }
  return 1500
}
