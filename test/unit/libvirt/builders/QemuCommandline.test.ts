import { describe, expect, test } from "bun:test"
import type { StorageDisk } from "../../../../src/libvirt/builders/Disks.ts"
import type { UserNetworkNic } from "../../../../src/libvirt/builders/Interfaces.ts"
import {
  buildQemuCommandline,
  escapeQemuOptionValue,
  nvmeDiskArgs,
  qemuNicDevices,
  userNetworkArgs,
  userNetworkSubnets
} from "../../../../src/libvirt/builders/QemuCommandline.ts"
import { forward, makeInputs } from "../fixtures.ts"

const userNic: UserNetworkNic = {
  index: 1,
  mac: "52:54:00:00:00:01",
  model: "virtio",
  mtu: undefined,
  bootOrder: undefined,
  rom: undefined,
  forwards: [forward(2222, 22), forward(5353, 53, "udp")]
}

const nvmeDisk: StorageDisk = {
  name: "disk",
  kind: "file",
  path: "/var/lib/vm-runner/vms/testvm/disk.qcow2",
  format: "qcow2",
  cache: "none",
  io: "native",
  bootOrder: 1,
  blockSize: undefined
}

describe("userNetworkArgs", () => {
  test("netdev carries every forward", () => {
    const [netdevFlag, netdev, deviceFlag, device] = userNetworkArgs(userNic)
    expect(netdevFlag).toBe("-netdev")
    expect(netdev).toBe("user,id=vmr-net1,restrict=off,hostfwd=tcp::2222-:22,hostfwd=udp::5353-:53")
    expect(deviceFlag).toBe("-device")
    expect(JSON.parse(device ?? "")).toEqual({
      driver: "virtio-net-pci",
      netdev: "vmr-net1",
      id: "vmr-nic1",
      mac: "52:54:00:00:00:01"
    })
  })

  test("NIC without forwards", () => {
    const [, netdev] = userNetworkArgs({ ...userNic, index: 3, forwards: [] })
    expect(netdev).toBe("user,id=vmr-net3,restrict=off,net=10.0.4.0/24,ipv6-net=fec0:2::/64")
  })

  test("each NIC gets its own subnets", () => {
    expect(userNetworkSubnets(1)).toEqual([])
    expect(userNetworkSubnets(2)).toEqual(["net=10.0.3.0/24", "ipv6-net=fec0:1::/64"])
    expect(userNetworkSubnets(16)).toEqual(["net=10.0.17.0/24", "ipv6-net=fec0:f::/64"])
  })

  test("boot order, ROM and MTU reach the device", () => {
    const rom = "/roms/efi virtio,v2.rom"
    const [, , , device] = userNetworkArgs({ ...userNic, bootOrder: 2, rom, mtu: 1400 })
    expect(JSON.parse(device ?? "")).toMatchObject({ bootindex: 2, romfile: rom, host_mtu: 1400 })
  })

  test("MTU only on virtio-net", () => {
    const [, , , device] = userNetworkArgs({ ...userNic, model: "e1000", mtu: 1400 })
    const parsed = JSON.parse(device ?? "")
    expect(parsed.driver).toBe("e1000")
    expect(parsed.host_mtu).toBeUndefined()
  })

  test("every model maps to a QEMU device", () => {
    expect(qemuNicDevices).toEqual({
      virtio: "virtio-net-pci",
      e1000: "e1000",
      e1000e: "e1000e",
      rtl8139: "rtl8139",
      ne2k_pci: "ne2k_pci",
      pcnet: "pcnet",
      vmxnet3: "vmxnet3"
    })
  })
})

describe("nvmeDiskArgs", () => {
  test("drive and nvme device", () => {
    const [driveFlag, drive, deviceFlag, device] = nvmeDiskArgs(nvmeDisk)
    expect(driveFlag).toBe("-drive")
    expect(drive).toBe(
      "file=/var/lib/vm-runner/vms/testvm/disk.qcow2,if=none,id=vmr-drive-disk," +
        "format=qcow2,cache=none,aio=native,discard=unmap"
    )
    expect(deviceFlag).toBe("-device")
    expect(JSON.parse(device ?? "")).toEqual({
      driver: "nvme",
      drive: "vmr-drive-disk",
      id: "vmr-nvme-disk",
      serial: "disk",
      bootindex: 1
    })
  })

  test("commas in the path are doubled", () => {
    const [, drive] = nvmeDiskArgs({ ...nvmeDisk, path: "/data/a,b/disk.qcow2" })
    expect(drive).toStartWith("file=/data/a,,b/disk.qcow2,if=none")
  })

  test("block device with 4K sectors", () => {
    const block: StorageDisk = {
      ...nvmeDisk,
      name: "device2",
      kind: "block",
      path: "/dev/sdc",
      format: "raw",
      bootOrder: undefined,
      blockSize: 4096
    }
    const [, drive, , device] = nvmeDiskArgs(block)
    expect(drive).toBe(
      "file=/dev/sdc,if=none,id=vmr-drive-device2,format=raw,cache=none,aio=native"
    )
    expect(JSON.parse(device ?? "")).toEqual({
      driver: "nvme",
      drive: "vmr-drive-device2",
      id: "vmr-nvme-device2",
      serial: "device2",
      logical_block_size: 4096,
      physical_block_size: 4096
    })
  })
})

describe("escapeQemuOptionValue", () => {
  test("doubles commas only", () => {
    expect(escapeQemuOptionValue("a,b,,c d=e")).toBe("a,,b,,,,c d=e")
  })
})

describe("buildQemuCommandline", () => {
  test("nothing to add", () => {
    expect(buildQemuCommandline(makeInputs(), [], [])).toBeUndefined()
  })

  test("network, then disks, then EXTRA_ARGS", () => {
    const inputs = makeInputs({
      config: { devices: { extraArgs: ["-smbios", "type=0,vendor=x"] } }
    })
    const commandline = buildQemuCommandline(inputs, [userNic], [nvmeDisk])
    expect(commandline?.args.map((arg) => (arg.startsWith("-") ? arg : "…"))).toEqual([
      "-netdev",
      "…",
      "-device",
      "…",
      "-drive",
      "…",
      "-device",
      "…",
      "-smbios",
      "…"
    ])
    expect(commandline?.args.at(-1)).toBe("type=0,vendor=x")
  })

  test("EXTRA_ARGS alone", () => {
    const inputs = makeInputs({ config: { devices: { extraArgs: ["-no-hpet"] } } })
    expect(buildQemuCommandline(inputs, [], [])).toEqual({ args: ["-no-hpet"] })
  })
})
