import { describe, expect, test } from "bun:test"
import { release } from "node:os"
import { type ByteSize, GiB } from "../../../src/domain/ByteSize.ts"
import { makeLayout } from "../../../src/domain/Layout.ts"
import { accessBlock, hostBlock, renderBlock, vmBlock } from "../../../src/runtime/Banner.ts"
import { type LaunchFacts, planLaunch } from "../../../src/runtime/Plan.ts"
import { fakeHost } from "../config/fakeHost.ts"
import {
  amdHost,
  type ConfigOverrides,
  forward,
  makeConfig,
  makeNetwork,
  makeNic,
  makeShare
} from "../libvirt/fixtures.ts"

/** Label of each row of a rendered block, after its title line. */
const labelsOf = (block: string) =>
  block
    .split("\n")
    .slice(1)
    .map((line) => /^ {2}(\S+(?: \d+)?)/.exec(line)?.[1])

const rowOf = (block: string, label: string) =>
  block
    .split("\n")
    .find((line) => line.startsWith(`  ${label} `))
    ?.slice(2 + label.length)
    .trim()

const userPassword = "Tr0ub4dor&3-correct-horse"
const vncPassword = "vnc-s3cret"
const redfishPassword = "redfish-s3cret"

/** Every service on, every secret set: the block with the most to leak. */
const everything = makeConfig({
  cloudInit: { password: userPassword, passwordIsDefault: false },
  network: makeNetwork([makeNic()], {
    sshPort: 2200,
    portForwards: [forward(8080, 80), forward(5353, 53, "udp")]
  }),
  graphics: { mode: "novnc", vncPassword },
  redfish: { enabled: true, password: redfishPassword, passwordIsDefault: false }
})

describe("renderBlock", () => {
  test("labels padded to one width", () => {
    const block = renderBlock("title", [
      ["a", "one"],
      ["longer", "two"]
    ])
    expect(block).toBe("title\n  a       one\n  longer  two")
  })
})

describe("accessBlock secrets", () => {
  for (const inContainer of [true, false]) {
    test(`user's password never shown ${inContainer ? "in" : "outside"} a container`, () => {
      const block = accessBlock(everything, inContainer)
      expect(block).not.toContain(userPassword)
      expect(block).not.toContain(vncPassword)
      expect(block).not.toContain(redfishPassword)
    })
  }

  test("set password named by its variable", () => {
    expect(rowOf(accessBlock(everything, false), "login")).toBe(
      "ubuntu with the password from GUEST_PASSWORD"
    )
  })

  test("default password shown as insecure", () => {
    expect(rowOf(accessBlock(makeConfig(), false), "login")).toBe(
      "ubuntu / password (the insecure default: set GUEST_PASSWORD)"
    )
  })
})

describe("accessBlock rows", () => {
  test("every service has its row", () => {
    expect(labelsOf(accessBlock(everything, true))).toEqual([
      "SSH",
      "login",
      "guest-exec",
      "ports",
      "console",
      "Redfish",
      "publish"
    ])
  })

  test("SSH row names the port and user", () => {
    expect(rowOf(accessBlock(everything, false), "SSH")).toBe("ssh -p 2200 ubuntu@localhost")
  })

  test("ports row lists the forwards", () => {
    expect(rowOf(accessBlock(everything, false), "ports")).toBe("8080->80/tcp, 5353->53/udp")
  })

  test("publish row lists every port in a container", () => {
    expect(rowOf(accessBlock(everything, true), "publish")).toBe(
      "-p 2200:2200 -p 8080:8080 -p 5353:5353/udp -p 6080:6080 -p 8443:8443"
    )
  })

  test("no publish row outside a container", () => {
    expect(labelsOf(accessBlock(everything, false))).not.toContain("publish")
  })

  test("guest-exec through docker exec in a container", () => {
    expect(rowOf(accessBlock(makeConfig(), true), "guest-exec")).toBe(
      'docker exec <container> guest-exec "uname -a"'
    )
  })

  test("guest-exec directly outside a container", () => {
    expect(rowOf(accessBlock(makeConfig(), false), "guest-exec")).toBe('guest-exec "uname -a"')
  })

  test("VNC row with plain VNC", () => {
    const block = accessBlock(makeConfig({ graphics: { mode: "vnc", vncPort: 5901 } }), true)
    expect(rowOf(block, "VNC")).toBe("localhost:5901")
    expect(rowOf(block, "publish")).toBe("-p 2222:2222 -p 5901:5901")
  })

  test("web console URL with noVNC", () => {
    expect(rowOf(accessBlock(everything, false), "console")).toBe(
      "https://localhost:6080/vnc.html?autoconnect=1&resize=scale"
    )
  })

  test("without cloud-init no login row", () => {
    const block = accessBlock(makeConfig({ cloudInit: { enabled: false } }), false)
    expect(rowOf(block, "SSH")).toBe("port 2222 -> guest 22")
    expect(labelsOf(block)).not.toContain("login")
  })

  test("bridged NIC has no SSH or ports rows", () => {
    const config = makeConfig({
      network: makeNetwork([makeNic({ mode: "bridge", bridge: "br0" })], {
        portForwards: [forward(8080, 80)]
      })
    })
    expect(labelsOf(accessBlock(config, true))).toEqual(["login", "guest-exec"])
  })
})

describe("hostBlock", () => {
  const host = fakeHost({ availableMemoryMiB: 8192, usableCpus: 4 })
  const kvm = { accel: "kvm", reason: "KVM ran a test guest" } as const
  const tcg = { accel: "tcg", reason: "/dev/kvm is missing" } as const
  const docker = { engine: "docker", rootless: true } as const

  test("renders every row", () => {
    const block = hostBlock(host, "/var/lib/vm-runner", kvm, docker)
    expect(block.split("\n")[0]).toBe("host")
    expect(labelsOf(block)).toEqual(["CPU", "memory", "storage", "KVM", "kernel", "container"])
  })

  test("CPU row counts usable CPUs", () => {
    const block = hostBlock(host, "/var/lib/vm-runner", kvm, docker)
    expect(rowOf(block, "CPU")).toContain(", 4 usable here)")
  })

  test("memory row shows the available memory", () => {
    const block = hostBlock(host, "/var/lib/vm-runner", kvm, docker)
    expect(rowOf(block, "memory")).toStartWith("8.0 GiB available of ")
  })

  test("storage row shows free space at the data root", () => {
    const block = hostBlock(host, "/var/lib/vm-runner", kvm, docker)
    expect(rowOf(block, "storage")).toBe("100.0 GiB free at /var/lib/vm-runner")
  })

  test("storage row without free space", () => {
    const block = hostBlock(fakeHost({ freeBytes: {} }), "/data", kvm, docker)
    expect(rowOf(block, "storage")).toBe("unknown free at /data")
  })

  test("KVM in use with its reason", () => {
    const block = hostBlock(host, "/data", kvm, docker)
    expect(rowOf(block, "KVM")).toBe("in use (KVM ran a test guest)")
  })

  test("KVM not used with its reason", () => {
    const block = hostBlock(host, "/data", tcg, docker)
    expect(rowOf(block, "KVM")).toBe("not used: /dev/kvm is missing")
  })

  test("kernel and container rows", () => {
    const block = hostBlock(host, "/data", kvm, docker)
    expect(rowOf(block, "kernel")).toBe(release())
    expect(rowOf(block, "container")).toBe("docker (rootless)")
  })
})

describe("vmBlock", () => {
  const layout = makeLayout("/var/lib/vm-runner", "testvm")
  const facts: LaunchFacts = {
    accelerator: { accel: "kvm", reason: "KVM ran a test guest" },
    passt: false,
    virtiofsReadonly: false,
    virtiofsSandbox: "namespace",
    hostCpu: amdHost,
    directIo: true,
    filesystem: "ext4",
    virtiofsd: undefined,
    renderNode: undefined,
    blockSectorSizes: new Map(),
    base: { _tag: "Blank" },
    installIso: "/images/debian-12.iso",
    existingWorkDisk: undefined,
    existingExtraDisks: new Set(),
    installed: false,
    uuid: "6b1c6d4e-2f0a-4c1e-9b7a-3d5e8f9a0b1c"
  }
  const blockOf = (config: ConfigOverrides) =>
    vmBlock(planLaunch(makeConfig(config), layout, facts, undefined))

  const full = blockOf({
    boot: { mode: "secure", tpm: true, order: ["cdrom", "hd"] },
    storage: {
      extraDisks: [{ index: 2, size: (50 * GiB) as ByteSize }],
      blockDevices: [{ index: 1, path: "/dev/sdb" }]
    },
    network: makeNetwork([
      makeNic({ index: 1 }),
      makeNic({ index: 2, mode: "bridge", bridge: "br0", mtu: 9000 }),
      makeNic({ index: 3, mode: "direct", directDevice: "eth1", model: "e1000e" })
    ]),
    filesystems: [makeShare({ source: "/srv/data", tag: "data", readonly: true })],
    devices: { hyperv: true, gpu: "intel" }
  })

  test("renders every row", () => {
    expect(full.split("\n")[0]).toBe("vm testvm")
    expect(labelsOf(full)).toEqual([
      "image",
      "resources",
      "boot",
      "devices",
      "disks",
      "NIC 1",
      "NIC 2",
      "NIC 3",
      "share",
      "installer"
    ])
  })

  test("image row names the distribution", () => {
    expect(rowOf(full, "image")).toBe("Ubuntu 24.04")
  })

  test("resources row", () => {
    expect(rowOf(full, "resources")).toBe("2 vCPU, 4096 MiB, 20G virtio disk")
  })

  test("boot row uses the planned order", () => {
    expect(rowOf(full, "boot")).toBe("UEFI Secure Boot, q35, KVM, order cdrom,hd")
  })

  test("devices row lists the features", () => {
    expect(rowOf(full, "devices")).toBe("TPM, Hyper-V, IOThread, balloon, RNG, USB, GPU intel")
  })

  test("disks row lists extra disks and devices", () => {
    expect(rowOf(full, "disks")).toBe("disk2 50G, /dev/sdb")
  })

  test("NIC rows by mode", () => {
    expect(rowOf(full, "NIC 1")).toBe("nat through QEMU user networking (virtio) 52:54:00:00:00:01")
    expect(rowOf(full, "NIC 2")).toBe("bridge on br0 (virtio) 52:54:00:00:00:02 mtu 9000")
    expect(rowOf(full, "NIC 3")).toBe("direct on eth1 (e1000e) 52:54:00:00:00:03")
  })

  test("share row with mount point and mode", () => {
    expect(rowOf(full, "share")).toBe("/srv/data -> /mnt/data (virtiofs, ro)")
  })

  test("installer row names the ISO", () => {
    expect(rowOf(full, "installer")).toBe("/images/debian-12.iso")
  })

  test("devices none when everything is off", () => {
    const block = blockOf({
      storage: { ioThread: false },
      devices: { usb: false, balloon: false, rng: false }
    })
    expect(rowOf(block, "devices")).toBe("none")
  })

  test("legacy boot reads BIOS", () => {
    expect(rowOf(blockOf({ boot: { mode: "legacy" } }), "boot")).toStartWith("BIOS, q35, KVM")
  })
})
