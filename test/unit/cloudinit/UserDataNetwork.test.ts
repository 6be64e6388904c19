/** MTUs, direct NICs and IPv6 in the cloud-init documents; UserData.test.ts covers the rest. */
import { describe, expect, test } from "bun:test"
import {
  buildCloudConfig,
  buildNetworkConfig,
  guestMtuScript
} from "../../../src/cloudinit/UserData.ts"
import type { MacAddress } from "../../../src/domain/MacAddress.ts"
import { makeConfig, makeNetwork, makeNic } from "../libvirt/fixtures.ts"

const withNics = (...nics: Array<ReturnType<typeof makeNic>>) =>
  makeConfig({ network: makeNetwork(nics) })

describe("buildNetworkConfig MTU", () => {
  test("one virtio NIC with an MTU uses the fallback", () => {
    // virtio-net passes the MTU to the guest through the device (host_mtu).
    expect(buildNetworkConfig(withNics(makeNic({ mtu: 1400 })))).toBeUndefined()
  })

  test("one vmxnet3 NIC with an MTU gets it from cloud-init", () => {
    const config = withNics(makeNic({ model: "vmxnet3", mtu: 1400 }))
    expect(buildNetworkConfig(config)).toEqual({
      version: 2,
      ethernets: {
        nic1: {
          match: { macaddress: "52:54:00:00:00:01" },
          dhcp4: true,
          dhcp6: false,
          mtu: 1400,
          optional: false
        }
      }
    })
  })

  test("one direct virtio NIC with an MTU gets it from cloud-init", () => {
    // libvirt accepts no MTU on direct (macvtap) interfaces, so host_mtu is not set.
    const nic = makeNic({ mode: "direct", directDevice: "eth0", mtu: 1280 })
    expect(buildNetworkConfig(withNics(nic))?.ethernets.nic1?.mtu).toBe(1280)
  })

  test("one e1000 NIC with MTU 1500 uses the fallback", () => {
    expect(buildNetworkConfig(withNics(makeNic({ model: "e1000", mtu: 1500 })))).toBeUndefined()
  })

  test("two NICs carry their MTUs and no DHCPv6", () => {
    const config = withNics(
      makeNic({ index: 1, mtu: 1300 }),
      makeNic({
        index: 2,
        mode: "bridge",
        bridge: "br0",
        model: "e1000",
        mac: "52:54:00:aa:bb:cc" as MacAddress
      })
    )
    const ethernets = buildNetworkConfig(config)?.ethernets
    expect(ethernets?.nic1?.mtu).toBe(1300)
    expect(ethernets?.nic2?.mtu).toBeUndefined()
    expect(ethernets?.nic1?.dhcp6).toBe(false)
    expect(ethernets?.nic2?.dhcp6).toBe(false)
  })
})

describe("guestMtuScript", () => {
  test("sets the MTU of each NIC the device cannot tell", () => {
    const nics = [
      makeNic({ index: 1, mtu: 1400 }),
      makeNic({ index: 2, model: "vmxnet3", mtu: 1280 }),
      makeNic({ index: 3, mode: "direct", directDevice: "eth0", mtu: 1300 })
    ]
    expect(guestMtuScript(nics)).toBe(
      [
        "for dev in /sys/class/net/*; do",
        '  case "$(cat "$dev/address" 2>/dev/null)" in',
        '    52:54:00:00:00:02) ip link set dev "$(basename "$dev")" mtu 1280 ;;',
        '    52:54:00:00:00:03) ip link set dev "$(basename "$dev")" mtu 1300 ;;',
        "  esac",
        "done",
        ""
      ].join("\n")
    )
  })

  test("nothing for virtio NICs", () => {
    expect(guestMtuScript([makeNic({ mtu: 1400 })])).toBeUndefined()
  })

  test("runs as a bootcmd", () => {
    const config = withNics(makeNic({ model: "vmxnet3", mtu: 1280 }))
    const bootcmd = buildCloudConfig(config, "salt").bootcmd
    expect(bootcmd).toEqual([["sh", "-c", guestMtuScript(config.network.nics) ?? ""]])
  })

  test("no bootcmd without such a NIC", () => {
    expect(buildCloudConfig(withNics(makeNic()), "salt").bootcmd).toBeUndefined()
  })
})
