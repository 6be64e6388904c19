/**
 * NAT networking and shared folders, proven from inside one running guest (one boot under TCG
 * serves every check): SSH_PORT and a TCP and a UDP PORT_FWD forward reached from the host's
 * loopback, IPv6 in the guest, two NAT NICs with their MAC, MTU and model, and six shares:
 * virtiofs and 9p (passthrough, mapped, squash), read-write and read-only, each mounted by
 * cloud-init at /mnt/<tag>.
 *
 * The 9p checks need a guest kernel with 9p. Debian's cloud kernel (linux-image-cloud-amd64)
 * is built without it (CONFIG_NET_9P is not set), so they fail on a test image built with that
 * kernel, and the "guest kernel has 9p" test reports that first.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { createSocket } from "node:dgram"
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { connect, createServer } from "node:net"
import { join } from "node:path"
import { spawnSync } from "bun"
import {
  guestIpv4,
  guestNics,
  guestRun,
  guestText,
  nicByMac,
  resolvedConfig,
  startGuestService
} from "./network/guest.ts"
import { freeUdpPort } from "./network/hostNetwork.ts"
import {
  freePort,
  guestImage,
  makeWorkDir,
  removeDir,
  reportTime,
  stopIfRunning,
  VmRun
} from "./support/harness.ts"

const bootTimeout = 15 * 60_000
/** How long a forward may take to carry a first connection or datagram through slirp. */
const forwardTimeoutMs = 60_000

const name = `net-nat-${process.pid}`
const nic1Mac = "52:54:00:76:6d:01"
const guestTcpPort = 8080
const guestUdpPort = 9999
/** The login user cloud-init creates in the test guest. */
const guestUser = "user"
const guestUid = 1000

/** Shares by their tag; the first sets FILESYSTEM_TARGET, the others derive it. */
const shares = {
  virtiofs: { tag: "vmrt-virtiofs", env: {} },
  virtiofsReadonly: { tag: "virtiofs-ro", env: { READONLY: "1" } },
  ninep: { tag: "ninep", env: { DRIVER: "9p" } },
  ninepReadonly: { tag: "ninep-ro", env: { DRIVER: "9p", READONLY: "1" } },
  ninepMapped: { tag: "ninep-mapped", env: { DRIVER: "9p", ACCESSMODE: "mapped" } },
  ninepSquash: { tag: "ninep-squash", env: { DRIVER: "9p", ACCESSMODE: "squash" } }
} as const

let workDir: string
let env: Record<string, string>
let run: VmRun
let sshPort: number
let tcpPort: number
let udpPort: number
let nic2Mac: string

const sourceOf = (tag: string) => join(workDir, "shares", tag)

/** FILESYSTEM_* for the first share, FILESYSTEMn_* for the others, in `shares` order. */
const shareEnv = (): Record<string, string> => {
  const result: Record<string, string> = {}
  Object.values(shares).forEach((share, position) => {
    const prefix = position === 0 ? "FILESYSTEM" : `FILESYSTEM${position + 1}`
    result[`${prefix}_SOURCE`] = sourceOf(share.tag)
    if (position === 0) result[`${prefix}_TARGET`] = share.tag
    for (const [field, value] of Object.entries(share.env)) result[`${prefix}_${field}`] = value
  })
  return result
}

beforeAll(async () => {
  const started = performance.now()
  workDir = makeWorkDir("net-nat")
  for (const share of Object.values(shares)) {
    mkdirSync(sourceOf(share.tag), { recursive: true })
    // The guest's login user writes into the shares, so the host directories let anyone write.
    chmodSync(sourceOf(share.tag), 0o777)
  }
  writeFileSync(join(sourceOf(shares.virtiofsReadonly.tag), "from-host"), "read-only virtiofs\n")
  writeFileSync(join(sourceOf(shares.ninepReadonly.tag), "from-host"), "read-only 9p\n")
  sshPort = await freePort()
  tcpPort = await freePort()
  udpPort = await freeUdpPort()
  env = {
    BOOT_FROM: guestImage(),
    DATA_DIR: join(workDir, "data"),
    GUEST_NAME: name,
    PERSIST: "0",
    MEMORY: "1024",
    CPUS: "2",
    NO_CONSOLE: "1",
    SSH_PORT: String(sshPort),
    PORT_FWD: `${tcpPort}:${guestTcpPort},${udpPort}:${guestUdpPort}/udp`,
    NETWORK_MAC: nic1Mac,
    NETWORK_MTU: "1300",
    NETWORK2_MODE: "nat",
    // vmxnet3 is the one model besides virtio that Debian's cloud kernel drives.
    NETWORK2_MODEL: "vmxnet3",
    NETWORK2_MTU: "1280",
    ...shareEnv()
  }
  nic2Mac = resolvedConfig(env).network.nics[1].mac
  run = new VmRun(env)
  await run.waitForLog(/cloud-init finished/, bootTimeout)
  reportTime("NAT and shares guest: boot to cloud-init done", started)
}, bootTimeout + 60_000)

afterAll(async () => {
  await stopIfRunning(run, "NAT and shares guest")
  spawnSync(["virsh", "-c", "qemu:///system", "undefine", name, "--nvram"], { stderr: "ignore" })
  if (workDir !== undefined) removeDir(workDir)
})

/** Tells whether the NAT NICs use passt, which libvirt 10 and later offer with passt installed. */
const usesPasst = () =>
  readFileSync(join(workDir, "data", "vms", name, "domain.xml"), "utf8").includes(
    "<backend type='passt'/>"
  )

/**
 * Returns the guest's IPv6 default gateway on `device`. passt maps connections to it to the
 * host's loopback (passt(1), --no-map-gw).
 *
 * NOTE: only the QEMU user networking path has run here (Debian 12, libvirt 9.0 without passt).
 */
const ipv6Gateway = async (device: string) => {
  const route = await guestText(name, `ip -6 route show default dev ${device}`)
  const gateway = /via (\S+)/.exec(route)?.[1]
  if (gateway === undefined) throw new Error(`no IPv6 default route on ${device}: ${route}`)
  return gateway
}

/** Polls the guest until something listens on `port` (`ss` filter syntax). */
const waitForGuestListener = async (protocol: "tcp" | "udp", port: number) => {
  const flag = protocol === "tcp" ? "-ltnH" : "-lunH"
  const deadline = performance.now() + forwardTimeoutMs
  while (performance.now() < deadline) {
    const result = await guestRun(name, `ss ${flag} 'sport = :${port}'`)
    if (result.stdout.trim() !== "") return
    await Bun.sleep(500)
  }
  throw new Error(`nothing listens on guest ${protocol} port ${port}`)
}

/** Connects to the host's loopback `port`, sends `message`, and returns everything read. */
const tcpExchange = (port: number, message: string) =>
  new Promise<string>((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.end(message))
    let received = ""
    socket.setTimeout(forwardTimeoutMs, () => socket.destroy(new Error("TCP exchange timed out")))
    socket.on("data", (chunk) => {
      received += chunk.toString()
    })
    socket.on("end", () => resolve(received))
    socket.on("error", reject)
  })

/** Sends `message` to the host's loopback UDP `port` until a reply arrives; returns it. */
const udpExchange = (port: number, message: string) =>
  new Promise<string>((resolve, reject) => {
    const socket = createSocket("udp4")
    const send = () => socket.send(message, port, "127.0.0.1")
    // UDP may lose the first datagram while slirp sets up its binding, so it is resent.
    const resend = setInterval(send, 2000)
    const timeout = setTimeout(() => {
      clearInterval(resend)
      socket.close()
      reject(new Error("no UDP reply"))
    }, forwardTimeoutMs)
    socket.on("message", (reply) => {
      clearInterval(resend)
      clearTimeout(timeout)
      socket.close()
      resolve(reply.toString())
    })
    send()
  })

/** Reads the first line a TCP server sends on the host's loopback `port`. */
const tcpBanner = (port: number) =>
  new Promise<string>((resolve, reject) => {
    const socket = connect(port, "127.0.0.1")
    socket.setTimeout(forwardTimeoutMs, () => socket.destroy(new Error("no banner")))
    socket.once("data", (chunk) => {
      socket.destroy()
      resolve(chunk.toString().split("\r\n")[0] ?? "")
    })
    socket.on("error", reject)
  })

describe("NAT forwards", () => {
  test("SSH_PORT reaches the guest's sshd", async () => {
    expect(await tcpBanner(sshPort)).toStartWith("SSH-2.0-OpenSSH")
  })

  test(
    "TCP forward in both directions",
    async () => {
      await startGuestService(
        name,
        "vmrt-tcp",
        `echo pong-tcp | nc -l -N ${guestTcpPort} > /tmp/vmrt-tcp-in`
      )
      await waitForGuestListener("tcp", guestTcpPort)
      expect(await tcpExchange(tcpPort, "ping-tcp\n")).toBe("pong-tcp\n")
      expect(await guestText(name, "cat /tmp/vmrt-tcp-in")).toBe("ping-tcp\n")
    },
    forwardTimeoutMs * 3
  )

  test(
    "UDP forward in both directions",
    async () => {
      await startGuestService(
        name,
        "vmrt-udp",
        `echo pong-udp | nc -u -l ${guestUdpPort} > /tmp/vmrt-udp-in`
      )
      await waitForGuestListener("udp", guestUdpPort)
      expect(await udpExchange(udpPort, "ping-udp\n")).toBe("pong-udp\n")
      expect(await guestText(name, "cat /tmp/vmrt-udp-in")).toStartWith("ping-udp\n")
    },
    forwardTimeoutMs * 3
  )
})

describe("NAT NICs", () => {
  test("NIC 1 has NETWORK_MAC, NETWORK_MTU and virtio", async () => {
    const nic = nicByMac(await guestNics(name), nic1Mac)
    expect(nic.mtu).toBe(1300)
    expect(nic.driver).toBe("virtio_net")
  })

  test("NIC 2 has its derived MAC, MTU and vmxnet3", async () => {
    const nic = nicByMac(await guestNics(name), nic2Mac)
    expect(nic.mtu).toBe(1280)
    expect(nic.driver).toBe("vmxnet3")
  })

  test("both NICs are up with addresses", async () => {
    const nics = await guestNics(name)
    const first = nicByMac(nics, nic1Mac)
    const second = nicByMac(nics, nic2Mac)
    expect(first.operstate).toBe("up")
    expect(second.operstate).toBe("up")
    const firstAddresses = await guestIpv4(name, first.name)
    const secondAddresses = await guestIpv4(name, second.name)
    if (usesPasst()) {
      // passt leases the host's own address to every NIC.
      expect(firstAddresses).toHaveLength(1)
      expect(secondAddresses).toHaveLength(1)
    } else {
      // QEMU's user networking: NIC n is 10.0.(n+1).15, each NIC in its own subnet.
      expect(firstAddresses).toEqual(["10.0.2.15"])
      expect(secondAddresses).toEqual(["10.0.3.15"])
    }
  })

  test(
    "IPv6 reaches the host's loopback",
    async () => {
      const nic = nicByMac(await guestNics(name), nic1Mac)
      const addresses = await guestText(name, `ip -6 -o addr show dev ${nic.name}`)
      expect(addresses).toMatch(/inet6 (?!fe80:)[0-9a-f:]+\//)
      const hostAddress = usesPasst()
        ? `${await ipv6Gateway(nic.name)}%${nic.name}`
        : // QEMU's user networking advertises fec0::/64, where fec0::2 is the host's loopback.
          "fec0::2"
      const port = await freePort()
      let received = ""
      const server = createServer((socket) => {
        socket.on("data", (chunk) => {
          received += chunk.toString()
        })
      })
      await new Promise<void>((resolve) => server.listen(port, "::1", () => resolve()))
      try {
        const sent = await guestRun(name, `echo hello-v6 | nc -N -w 20 ${hostAddress} ${port}`)
        expect(sent.exitCode).toBe(0)
        await Bun.sleep(200)
        expect(received).toBe("hello-v6\n")
      } finally {
        server.close()
      }
    },
    forwardTimeoutMs
  )
})

/** Reads a guest mount: source tag, file system type and options, or undefined. */
const guestMount = async (tag: string) => {
  const mounts = await guestText(name, "cat /proc/mounts")
  const line = mounts.split("\n").find((entry) => entry.split(" ")[1] === `/mnt/${tag}`)
  if (line === undefined) return undefined
  const [source, , type, options = ""] = line.split(" ")
  return { source, type, options: options.split(",") }
}

/** Writes a file in the share as the login user and returns the host file's owner. */
const writeAsUser = async (tag: string, file: string, text: string) => {
  await guestText(name, `runuser -u ${guestUser} -- sh -c 'echo ${text} > /mnt/${tag}/${file}'`)
  return statSync(join(sourceOf(tag), file)).uid
}

describe("virtiofs shares", () => {
  test("mounted by cloud-init at /mnt/<tag>", async () => {
    const mount = await guestMount(shares.virtiofs.tag)
    expect(mount?.type).toBe("virtiofs")
    expect(mount?.options).toContain("rw")
    const fstab = await guestText(name, "cat /etc/fstab")
    expect(fstab).toContain(`${shares.virtiofs.tag}\t/mnt/${shares.virtiofs.tag}\tvirtiofs`)
  })

  test("host file appears in the guest", async () => {
    writeFileSync(join(sourceOf(shares.virtiofs.tag), "host-file"), "written on the host\n")
    const text = await guestText(name, `cat /mnt/${shares.virtiofs.tag}/host-file`)
    expect(text).toBe("written on the host\n")
  })

  test("guest file appears on the host with the guest's owner", async () => {
    const owner = await writeAsUser(shares.virtiofs.tag, "guest-file", "from-the-guest")
    const path = join(sourceOf(shares.virtiofs.tag), "guest-file")
    expect(readFileSync(path, "utf8")).toBe("from-the-guest\n")
    expect(owner).toBe(guestUid)
  })

  test("read-only share rejects writes", async () => {
    const tag = shares.virtiofsReadonly.tag
    expect((await guestMount(tag))?.options).toContain("ro")
    expect(await guestText(name, `cat /mnt/${tag}/from-host`)).toBe("read-only virtiofs\n")
    const write = await guestRun(name, `touch /mnt/${tag}/refused`)
    expect(write.stderr).toContain("Read-only file system")
    expect(write.exitCode).not.toBe(0)
  })

  test("read-only virtiofs warns where libvirt cannot enforce it", () => {
    const xml = readFileSync(join(workDir, "data", "vms", name, "domain.xml"), "utf8")
    const enforced = /<target dir='virtiofs-ro'\/>\s*<readonly\/>/.test(xml)
    if (enforced) {
      expect(run.stderr).not.toContain("FILESYSTEM2_READONLY=1: this libvirt cannot")
    } else {
      expect(run.stderr).toContain("FILESYSTEM2_READONLY=1: this libvirt cannot make a virtiofs")
    }
  })
})

describe("9p shares", () => {
  test("guest kernel has 9p", async () => {
    const filesystems = await guestText(name, "modprobe 9pnet_virtio 9p; cat /proc/filesystems")
    if (!/\t9p$/m.test(filesystems)) {
      throw new Error(
        "the guest kernel cannot mount 9p (Debian's cloud kernel is built without " +
          "CONFIG_NET_9P); build the test image with linux-image-amd64"
      )
    }
  })

  test("mounted by cloud-init at /mnt/<tag>", async () => {
    for (const share of [shares.ninep, shares.ninepMapped, shares.ninepSquash]) {
      const mount = await guestMount(share.tag)
      expect(mount?.type).toBe("9p")
      expect(mount?.options).toContain("rw")
    }
  })

  test("passthrough in both directions", async () => {
    const tag = shares.ninep.tag
    writeFileSync(join(sourceOf(tag), "host-file"), "9p from the host\n")
    expect(await guestText(name, `cat /mnt/${tag}/host-file`)).toBe("9p from the host\n")
    const owner = await writeAsUser(tag, "guest-file", "9p-from-the-guest")
    expect(readFileSync(join(sourceOf(tag), "guest-file"), "utf8")).toBe("9p-from-the-guest\n")
    expect(owner).toBe(guestUid)
  })

  test("mapped keeps guest owners off the host", async () => {
    const tag = shares.ninepMapped.tag
    const hostOwner = await writeAsUser(tag, "guest-file", "mapped-from-the-guest")
    // QEMU creates the file as its own user (root here) and records the guest's owner in
    // extended attributes, which only the guest reports as the owner.
    expect(hostOwner).toBe(process.getuid?.() ?? 0)
    expect(await guestText(name, `stat -c %u /mnt/${tag}/guest-file`)).toBe(`${guestUid}\n`)
    writeFileSync(join(sourceOf(tag), "host-file"), "mapped from the host\n")
    expect(await guestText(name, `cat /mnt/${tag}/host-file`)).toBe("mapped from the host\n")
  })

  test("squash in both directions", async () => {
    const tag = shares.ninepSquash.tag
    await writeAsUser(tag, "guest-file", "squash-from-the-guest")
    const path = join(sourceOf(tag), "guest-file")
    expect(readFileSync(path, "utf8")).toBe("squash-from-the-guest\n")
    // squash ignores a failed chown, but with QEMU as root the chown succeeds anyway.
    const chown = await guestRun(name, `chown ${guestUser} /mnt/${tag}/guest-file`)
    expect(chown.exitCode).toBe(0)
    writeFileSync(join(sourceOf(tag), "host-file"), "squash from the host\n")
    expect(await guestText(name, `cat /mnt/${tag}/host-file`)).toBe("squash from the host\n")
  })

  test("read-only share rejects writes after remount", async () => {
    const tag = shares.ninepReadonly.tag
    expect((await guestMount(tag))?.options).toContain("ro")
    expect(await guestText(name, `cat /mnt/${tag}/from-host`)).toBe("read-only 9p\n")
    expect((await guestRun(name, `touch /mnt/${tag}/refused`)).exitCode).not.toBe(0)
    // QEMU opens the 9p export read-only, so root in the guest cannot undo it.
    const remount = await guestRun(name, `mount -o remount,rw /mnt/${tag}`)
    expect(remount.exitCode).toBe(0)
    const write = await guestRun(name, `touch /mnt/${tag}/refused`)
    expect(write.stderr).toContain("Read-only file system")
    expect(write.exitCode).not.toBe(0)
  })
})
