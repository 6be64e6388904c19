import { describe, expect, test } from "bun:test"
import type { Network } from "../../../../src/domain/Config.ts"
import { planBootOrder } from "../../../../src/libvirt/builders/BootOrder.ts"
import { buildNetwork, listPortForwards } from "../../../../src/libvirt/builders/Interfaces.ts"
import type { DomainInputs } from "../../../../src/libvirt/DomainInputs.ts"
import { forward, makeInputs, makeNetwork, makeNic } from "../fixtures.ts"

const efiVirtio = "/usr/lib/ipxe/qemu/efi-virtio.rom"

const networkOf = (network: Network, overrides: Partial<DomainInputs> = {}) => {
  const inputs = makeInputs({ ...overrides, config: { network } })
  return buildNetwork(inputs, planBootOrder(inputs))
}

describe("listPortForwards", () => {
  test("SSH first, then PORT_FWD with udp", () => {
    const inputs = makeInputs({
      config: {
        network: makeNetwork([makeNic()], {
          sshPort: 2200,
          portForwards: [forward(8080, 80), forward(5353, 53, "udp")]
        })
      }
    })
    expect(listPortForwards(inputs)).toEqual([
      forward(2200, 22),
      forward(8080, 80),
      forward(5353, 53, "udp")
    ])
  })

  test("exact repeats are dropped", () => {
    const inputs = makeInputs({
      config: {
        network: makeNetwork([makeNic()], {
          portForwards: [forward(2222, 22), forward(8080, 80), forward(8080, 80)]
        })
      }
    })
    expect(listPortForwards(inputs)).toEqual([forward(2222, 22), forward(8080, 80)])
  })
})

describe("buildNetwork without passt", () => {
  test("NAT NIC becomes QEMU user networking", () => {
    const devices = networkOf(makeNetwork([makeNic({ mtu: 1400 })]))
    expect(devices.interfaces).toEqual([])
    expect(devices.userNetworkNics).toEqual([
      {
        index: 1,
        mac: "52:54:00:00:00:01",
        model: "virtio",
        mtu: 1400,
        bootOrder: undefined,
        rom: undefined,
        forwards: [forward(2222, 22)]
      }
    ])
  })

  test("MTU 1500 is not written", () => {
    const devices = networkOf(makeNetwork([makeNic({ mtu: 1500 })]))
    expect(devices.userNetworkNics[0]?.mtu).toBeUndefined()
  })

  test("forwards go on the first NAT NIC", () => {
    const devices = networkOf(
      makeNetwork(
        [
          makeNic({ index: 1, mode: "bridge", bridge: "br0" }),
          makeNic({ index: 2, mode: "nat" }),
          makeNic({ index: 3, mode: "nat" })
        ],
        { portForwards: [forward(8080, 80)] }
      )
    )
    expect(devices.interfaces.map((nic) => nic.type)).toEqual(["bridge"])
    expect(devices.interfaces[0]?.portForwards).toEqual([])
    expect(devices.userNetworkNics.map((nic) => [nic.index, nic.forwards])).toEqual([
      [2, [forward(2222, 22), forward(8080, 80)]],
      [3, []]
    ])
  })
})

describe("buildNetwork with passt", () => {
  const passt = { passt: true }

  test("NAT NIC is a passt user interface", () => {
    const devices = networkOf(
      makeNetwork([makeNic({ mtu: 1400 })], {
        portForwards: [forward(8080, 80), forward(5353, 53, "udp")]
      }),
      passt
    )
    expect(devices.userNetworkNics).toEqual([])
    expect(devices.interfaces).toEqual([
      {
        type: "user",
        mac: { address: "52:54:00:00:00:01" },
        model: { type: "virtio" },
        backend: { type: "passt" },
        mtu: { size: 1400 },
        rom: undefined,
        boot: undefined,
        portForwards: [
          {
            proto: "tcp",
            ranges: [
              { start: 2222, to: 22 },
              { start: 8080, to: 80 }
            ]
          },
          { proto: "udp", ranges: [{ start: 5353, to: 53 }] }
        ]
      }
    ])
  })

  test("second NAT NIC gets no forwards", () => {
    const devices = networkOf(makeNetwork([makeNic({ index: 1 }), makeNic({ index: 2 })]), passt)
    expect(devices.interfaces.map((nic) => nic.portForwards.length)).toEqual([1, 0])
  })
})

describe("buildNetwork bridge and direct", () => {
  test("bridge NIC names its bridge", () => {
    const devices = networkOf(
      makeNetwork([makeNic({ mode: "bridge", bridge: "br0", model: "e1000", mtu: 9000 })])
    )
    expect(devices.interfaces[0]).toEqual({
      type: "bridge",
      mac: { address: "52:54:00:00:00:01" },
      source: { bridge: "br0" },
      model: { type: "e1000" },
      mtu: { size: 9000 },
      rom: undefined,
      boot: undefined,
      portForwards: []
    })
  })

  test("direct NIC is macvtap in bridge mode", () => {
    const devices = networkOf(makeNetwork([makeNic({ mode: "direct", directDevice: "eth0" })]))
    expect(devices.interfaces[0]?.type).toBe("direct")
    expect(devices.interfaces[0]?.source).toEqual({ dev: "eth0", mode: "bridge" })
  })

  test("direct NIC carries no MTU", () => {
    const nic = makeNic({ mode: "direct", directDevice: "eth0", mtu: 1400 })
    const devices = networkOf(makeNetwork([nic]))
    expect(devices.interfaces[0]?.mtu).toBeUndefined()
  })

  test("bridge without a name is an internal error", () => {
    expect(() => networkOf(makeNetwork([makeNic({ mode: "bridge" })]))).toThrow(
      "internal error: NIC 1 has mode bridge but no bridge"
    )
  })
})

describe("buildNetwork iPXE", () => {
  const ipxe = { enabled: true, romPath: efiVirtio }

  test("ROM only on bootable NICs", () => {
    const inputs = makeInputs({
      passt: true,
      config: {
        boot: { order: ["network", "hd"] },
        network: makeNetwork(
          [makeNic({ index: 1, boot: true }), makeNic({ index: 2, boot: false })],
          { ipxe }
        )
      }
    })
    const devices = buildNetwork(inputs, planBootOrder(inputs))
    expect(devices.interfaces.map((nic) => nic.rom)).toEqual([{ file: efiVirtio }, undefined])
    expect(devices.interfaces.map((nic) => nic.boot)).toEqual([{ order: 1 }, undefined])
  })

  test("ROM only on NICs of the ROM's model", () => {
    const inputs = makeInputs({
      passt: true,
      config: {
        boot: { order: ["network", "hd"] },
        network: makeNetwork(
          [
            makeNic({ index: 1, boot: true, model: "virtio" }),
            makeNic({ index: 2, boot: true, model: "e1000" })
          ],
          { ipxe }
        )
      }
    })
    const devices = buildNetwork(inputs, planBootOrder(inputs))
    expect(devices.interfaces.map((nic) => nic.rom)).toEqual([{ file: efiVirtio }, undefined])
    expect(devices.interfaces.map((nic) => nic.boot)).toEqual([{ order: 1 }, { order: 2 }])
  })

  test("no ROM when iPXE is off", () => {
    const inputs = makeInputs({
      config: {
        boot: { order: ["network", "hd"] },
        network: makeNetwork([makeNic({ boot: true })], {
          ipxe: { enabled: false, romPath: efiVirtio }
        })
      }
    })
    const devices = buildNetwork(inputs, planBootOrder(inputs))
    expect(devices.userNetworkNics[0]?.rom).toBeUndefined()
    expect(devices.userNetworkNics[0]?.bootOrder).toBe(1)
  })

  test("user networking NIC carries the ROM", () => {
    const inputs = makeInputs({
      config: {
        boot: { order: ["network", "hd"] },
        network: makeNetwork([makeNic({ boot: true })], { ipxe })
      }
    })
    const devices = buildNetwork(inputs, planBootOrder(inputs))
    expect(devices.userNetworkNics[0]?.rom).toBe(efiVirtio)
  })
})
