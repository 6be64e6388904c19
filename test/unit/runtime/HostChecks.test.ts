import { afterEach, describe, expect, test } from "bun:test"
import { createSocket, type Socket } from "node:dgram"
import { createServer, type Server } from "node:net"
import { Effect } from "effect"
import type { ContainerEngine } from "../../../src/host/ContainerRuntime.ts"
import { Exec, type ExecResult } from "../../../src/process/Exec.ts"
import {
  type BindOutcome,
  type HostPort,
  listHostPorts,
  networkDeviceWarnings,
  type PortContext,
  portCheck,
  probeBind,
  qemuUserOf,
  readonlyVirtiofsWarnings,
  unprivilegedPortStart
} from "../../../src/runtime/HostChecks.ts"
import { chooseVirtiofsSandbox } from "../../../src/runtime/Prepare.ts"
import { fakeHost } from "../config/fakeHost.ts"
import { forward, makeConfig, makeNetwork, makeNic, makeShare } from "../libvirt/fixtures.ts"

const forwardPort = (port: number, protocol: "tcp" | "udp" = "tcp"): HostPort => ({
  variable: "PORT_FWD",
  port,
  protocol,
  boundByLibvirt: true
})

const rootQemu: PortContext = {
  unprivilegedStart: 1024,
  qemuUser: "root",
  leftoverDomain: undefined
}

const free: BindOutcome = { _tag: "Free" }
const inUse: BindOutcome = { _tag: "InUse" }
const denied: BindOutcome = { _tag: "PermissionDenied" }

describe("listHostPorts", () => {
  test("SSH and forwards on a NAT NIC", () => {
    const config = makeConfig({
      network: makeNetwork([makeNic()], {
        sshPort: 2200,
        portForwards: [forward(8080, 80), forward(5353, 53, "udp")]
      })
    })
    expect(listHostPorts(config)).toEqual([
      { variable: "SSH_PORT", port: 2200, protocol: "tcp", boundByLibvirt: true },
      { variable: "PORT_FWD", port: 8080, protocol: "tcp", boundByLibvirt: true },
      { variable: "PORT_FWD", port: 5353, protocol: "udp", boundByLibvirt: true }
    ])
  })

  test("no forwards without a NAT NIC", () => {
    const nic = makeNic({ mode: "bridge", bridge: "br0" })
    const config = makeConfig({ network: makeNetwork([nic]) })
    expect(listHostPorts(config)).toEqual([])
  })

  test("VNC by QEMU, noVNC and Redfish by vm-runner", () => {
    const config = makeConfig({
      network: makeNetwork([makeNic({ mode: "bridge", bridge: "br0" })]),
      graphics: { mode: "novnc", vncPort: 5901, novncPort: 6081 },
      redfish: { enabled: true, port: 8444 }
    })
    expect(listHostPorts(config)).toEqual([
      { variable: "VNC_PORT", port: 5901, protocol: "tcp", boundByLibvirt: true },
      { variable: "NOVNC_PORT", port: 6081, protocol: "tcp", boundByLibvirt: false },
      { variable: "REDFISH_PORT", port: 8444, protocol: "tcp", boundByLibvirt: false }
    ])
  })
})

describe("portCheck", () => {
  test("free port", () => {
    expect(portCheck(forwardPort(8080), free, rootQemu)).toEqual({
      name: "PORT_FWD 8080/tcp",
      ok: true,
      detail: "free"
    })
  })

  test("port in use", () => {
    const check = portCheck(forwardPort(5353, "udp"), inUse, rootQemu)
    expect(check.name).toBe("PORT_FWD 5353/udp")
    expect(check.ok).toBe(false)
    expect(check.detail).toContain("host UDP port 5353 is already in use")
    expect(check.detail).toContain("set PORT_FWD to a free port")
  })

  test("port held by the domain this run replaces", () => {
    const context = { ...rootQemu, leftoverDomain: "vm1" }
    const check = portCheck(forwardPort(8080), inUse, context)
    expect(check.ok).toBe(true)
    expect(check.detail).toContain("the domain vm1, which this run replaces")
  })

  test("privileged port without the capability", () => {
    const check = portCheck(forwardPort(80), denied, rootQemu)
    expect(check.ok).toBe(false)
    expect(check.detail).toContain(
      "host TCP port 80 is below net.ipv4.ip_unprivileged_port_start=1024, and vm-runner " +
        "lacks CAP_NET_BIND_SERVICE"
    )
    expect(check.detail).toContain("give PORT_FWD a host port of 1024 or above")
  })

  test("privileged port with QEMU not root", () => {
    const context = { ...rootQemu, qemuUser: "libvirt-qemu" }
    const check = portCheck(forwardPort(80), free, context)
    expect(check.ok).toBe(false)
    expect(check.detail).toContain("libvirt runs QEMU as libvirt-qemu")
    expect(check.detail).toContain('set user = "root" in /etc/libvirt/qemu.conf')
  })

  test("privileged port with QEMU as +0", () => {
    const context = { ...rootQemu, qemuUser: "+0" }
    expect(portCheck(forwardPort(80), free, context).ok).toBe(true)
  })

  test("privileged port bound by vm-runner itself", () => {
    const context = { ...rootQemu, qemuUser: "libvirt-qemu" }
    const redfish: HostPort = {
      variable: "REDFISH_PORT",
      port: 443,
      protocol: "tcp",
      boundByLibvirt: false
    }
    expect(portCheck(redfish, free, context).ok).toBe(true)
  })

  test("port a lowered threshold allows", () => {
    const context = { ...rootQemu, unprivilegedStart: 0, qemuUser: "libvirt-qemu" }
    expect(portCheck(forwardPort(80), free, context).ok).toBe(true)
  })

  test("other bind error", () => {
    const check = portCheck(forwardPort(8080), { _tag: "Failed", code: "EADDRNOTAVAIL" }, rootQemu)
    expect(check.ok).toBe(false)
    expect(check.detail).toBe("cannot listen on host TCP port 8080: EADDRNOTAVAIL")
  })
})

describe("qemuUserOf", () => {
  test("unreadable file", () => {
    expect(qemuUserOf(undefined)).toBeUndefined()
  })

  test("no user set is Debian's default", () => {
    expect(qemuUserOf('# user = "root"\ngroup = "kvm"\n')).toBe("libvirt-qemu")
  })

  test("last setting wins", () => {
    expect(qemuUserOf('user = "libvirt-qemu"\n\n# vm-runner\nuser = "root"\n')).toBe("root")
  })

  test("numeric user", () => {
    expect(qemuUserOf('  user = "+0"\n')).toBe("+0")
  })
})

describe("unprivilegedPortStart", () => {
  const path = "/proc/sys/net/ipv4/ip_unprivileged_port_start"

  test("reads the sysctl", () => {
    expect(unprivilegedPortStart(fakeHost({ files: { [path]: "0\n" } }))).toBe(0)
  })

  test("kernel default when unreadable", () => {
    expect(unprivilegedPortStart(fakeHost())).toBe(1024)
  })
})

describe("networkDeviceWarnings", () => {
  const config = makeConfig({
    network: makeNetwork([
      makeNic({ index: 1, mode: "bridge", bridge: "br0" }),
      makeNic({ index: 2, mode: "direct", directDevice: "eth1" }),
      makeNic({ index: 3 })
    ])
  })

  test("devices that are up", () => {
    const host = fakeHost({
      files: { "/sys/class/net/br0/flags": "0x1003\n", "/sys/class/net/eth1/flags": "0x1003\n" }
    })
    expect(networkDeviceWarnings(config, host)).toEqual([])
  })

  test("device that is down", () => {
    const host = fakeHost({
      files: { "/sys/class/net/br0/flags": "0x1002\n", "/sys/class/net/eth1/flags": "0x1003\n" }
    })
    expect(networkDeviceWarnings(config, host)).toEqual([
      "NIC 1 uses br0, which is down, so the guest gets no traffic on it until the device is " +
        "up ('ip link set br0 up')"
    ])
  })

  test("unreadable flags give no warning", () => {
    expect(networkDeviceWarnings(config, fakeHost())).toEqual([])
  })
})

describe("readonlyVirtiofsWarnings", () => {
  const shares = [
    makeShare({ index: 1, readonly: true, source: "/srv/docs" }),
    makeShare({ index: 2, readonly: false, tag: "rw" }),
    makeShare({ index: 3, readonly: true, driver: "9p", tag: "ro9p" })
  ]

  test("warns for read-only virtiofs only", () => {
    const warnings = readonlyVirtiofsWarnings(shares, false)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toStartWith("FILESYSTEM_READONLY=1: this libvirt cannot make")
    expect(warnings[0]).toContain("protects /srv/docs")
    expect(warnings[0]).toContain("set FILESYSTEM_DRIVER=9p")
  })

  test("nothing when libvirt enforces it", () => {
    expect(readonlyVirtiofsWarnings(shares, true)).toEqual([])
  })
})

describe("chooseVirtiofsSandbox", () => {
  const ran: Array<ReadonlyArray<string>> = []
  const fakeExec = (exitCode: number, stderr = "") =>
    Exec.of({
      run: (argv) => {
        ran.push(argv)
        const result: ExecResult = { exitCode, stdout: new Uint8Array(), stderr, text: "" }
        return Effect.succeed(result)
      }
    })
  const choose = (
    shares: ReadonlyArray<ReturnType<typeof makeShare>>,
    exec: Exec["Service"],
    engine: ContainerEngine = "none"
  ) =>
    Effect.runPromise(chooseVirtiofsSandbox(shares, engine).pipe(Effect.provideService(Exec, exec)))

  afterEach(() => {
    ran.length = 0
  })

  test("namespaces allowed", async () => {
    expect(await choose([makeShare()], fakeExec(0))).toBe("namespace")
    expect(ran).toEqual([["unshare", "--mount", "--pid", "--net", "--fork", "true"]])
  })

  test("namespaces refused: chroot", async () => {
    const stderr = "unshare: unshare failed: Operation not permitted\n"
    expect(await choose([makeShare()], fakeExec(1, stderr))).toBe("chroot")
  })

  test("in a container: chroot without a probe", async () => {
    expect(await choose([makeShare()], fakeExec(0), "docker")).toBe("chroot")
    expect(ran).toEqual([])
  })

  test("no virtiofs share, no probe", async () => {
    expect(await choose([makeShare({ driver: "9p" })], fakeExec(1))).toBe("namespace")
    expect(ran).toEqual([])
  })
})

describe("probeBind", () => {
  const holders: Array<Server | Socket> = []

  afterEach(() => {
    for (const holder of holders.splice(0)) holder.close()
  })

  const holdTcp = () =>
    new Promise<number>((resolve) => {
      const server = createServer()
      holders.push(server)
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        resolve(typeof address === "object" && address !== null ? address.port : 0)
      })
    })

  const holdUdp = () =>
    new Promise<number>((resolve) => {
      const socket = createSocket("udp4")
      holders.push(socket)
      socket.bind(0, "127.0.0.1", () => resolve(socket.address().port))
    })

  test("TCP port held on loopback is in use", async () => {
    const port = await holdTcp()
    expect(await probeBind(port, "tcp")).toEqual({ _tag: "InUse" })
  })

  test("UDP port held on loopback is in use", async () => {
    const port = await holdUdp()
    expect(await probeBind(port, "udp")).toEqual({ _tag: "InUse" })
  })

  test("released port is free", async () => {
    const port = await holdTcp()
    for (const holder of holders.splice(0)) holder.close()
    expect(await probeBind(port, "tcp")).toEqual({ _tag: "Free" })
  })
})
