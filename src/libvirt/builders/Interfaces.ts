import type { Nic, NicModel, PortForward } from "../../domain/Config.ts"
import type { DomainInputs } from "../DomainInputs.ts"
import type { DomainInterface, DomainInterfacePortForward } from "../DomainModel.ts"
import type { BootOrderPlan } from "./BootOrder.ts"

/** Ethernet's standard MTU. Only other values are written. */
const defaultMtu = 1500

/**
 * A NAT NIC on QEMU's built-in user networking (slirp), for a libvirt without passt. libvirt
 * 9.0 accepts `<portForward>` on a slirp `<interface type='user'>` but starts QEMU without the
 * forwards, so `buildQemuCommandline` adds these NICs as `-netdev user` and `-device` instead.
 */
export interface UserNetworkNic {
  readonly index: number
  readonly mac: string
  readonly model: NicModel
  readonly mtu: number | undefined
  readonly bootOrder: number | undefined
  readonly rom: string | undefined
  readonly forwards: ReadonlyArray<PortForward>
}

export interface NetworkDevices {
  readonly interfaces: ReadonlyArray<DomainInterface>
  readonly userNetworkNics: ReadonlyArray<UserNetworkNic>
}

/**
 * Lists the host-to-guest forwards: `SSH_PORT` to port 22, then each `PORT_FWD` entry. An entry
 * that repeats an earlier one is dropped, because QEMU cannot bind a host port twice.
 */
export const listPortForwards = (inputs: DomainInputs): Array<PortForward> => {
  const { sshPort, portForwards } = inputs.config.network
  const all: Array<PortForward> = [{ protocol: "tcp", host: sshPort, guest: 22 }, ...portForwards]
  const seen = new Set<string>()
  return all.filter((forward) => {
    const key = `${forward.protocol}:${forward.host}:${forward.guest}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

/**
 * Picks the iPXE ROM for a NIC, or undefined. Only a bootable NIC needs one. The configured
 * ROM was chosen for the first NIC's model and fits only NICs of that model. QEMU gives every
 * other NIC the default ROM of its own model.
 */
const ipxeRom = (inputs: DomainInputs, nic: Nic, bootOrder: number | undefined) => {
  const { ipxe, nics } = inputs.config.network
  if (!ipxe.enabled || ipxe.romPath === undefined || bootOrder === undefined) return undefined
  return nic.model === nics[0]?.model ? ipxe.romPath : undefined
}

/** Returns the bridge or direct device, which the configuration check guarantees. */
const required = (value: string | undefined, nic: Nic, field: string): string => {
  if (value !== undefined) return value
  throw new Error(`internal error: NIC ${nic.index} has mode ${nic.mode} but no ${field}`)
}

const mtuOf = (nic: Nic) => (nic.mtu !== undefined && nic.mtu !== defaultMtu ? nic.mtu : undefined)

const passtForwards = (forwards: ReadonlyArray<PortForward>): Array<DomainInterfacePortForward> =>
  (["tcp", "udp"] as const).flatMap((proto) => {
    const ranges = forwards
      .filter((forward) => forward.protocol === proto)
      .map((forward) => ({ start: forward.host, to: forward.guest }))
    return ranges.length === 0 ? [] : [{ proto, ranges }]
  })

const libvirtInterface = (
  inputs: DomainInputs,
  nic: Nic,
  bootOrder: number | undefined,
  forwards: ReadonlyArray<PortForward>
): DomainInterface => {
  const rom = ipxeRom(inputs, nic, bootOrder)
  const mtu = mtuOf(nic)
  const common = {
    mac: { address: nic.mac },
    model: { type: nic.model },
    mtu: mtu === undefined ? undefined : { size: mtu },
    rom: rom === undefined ? undefined : { file: rom },
    boot: bootOrder === undefined ? undefined : { order: bootOrder }
  }
  switch (nic.mode) {
    case "nat":
      return {
        ...common,
        type: "user",
        backend: { type: "passt" },
        portForwards: passtForwards(forwards)
      }
    case "bridge":
      return {
        ...common,
        type: "bridge",
        source: { bridge: required(nic.bridge, nic, "bridge") },
        portForwards: []
      }
    case "direct":
      return {
        ...common,
        // libvirt 9.0 rejects <mtu> on direct interfaces ("setting MTU on interface type
        // direct is not supported yet"). macvtap takes the MTU of its host device, and the
        // guest gets NETWORKn_MTU from cloud-init instead.
        mtu: undefined,
        type: "direct",
        source: { dev: required(nic.directDevice, nic, "direct device"), mode: "bridge" },
        portForwards: []
      }
  }
}

/**
 * Builds the NICs. NAT NICs use passt when this libvirt supports it and QEMU's user
 * networking otherwise. The SSH and `PORT_FWD` forwards go on the first NAT NIC, whichever
 * index it has, so a bridged first NIC with a NAT second one still gets them.
 */
export const buildNetwork = (inputs: DomainInputs, boot: BootOrderPlan): NetworkDevices => {
  const nics = inputs.config.network.nics
  const firstNat = nics.find((nic) => nic.mode === "nat")
  const forwards = listPortForwards(inputs)
  const interfaces: Array<DomainInterface> = []
  const userNetworkNics: Array<UserNetworkNic> = []
  for (const nic of nics) {
    const bootOrder = boot.nics.get(nic.index)
    const nicForwards = nic === firstNat ? forwards : []
    if (nic.mode === "nat" && !inputs.passt) {
      userNetworkNics.push({
        index: nic.index,
        mac: nic.mac,
        model: nic.model,
        mtu: mtuOf(nic),
        bootOrder,
        rom: ipxeRom(inputs, nic, bootOrder),
        forwards: nicForwards
      })
    } else {
      interfaces.push(libvirtInterface(inputs, nic, bootOrder, nicForwards))
    }
  }
  return { interfaces, userNetworkNics }
}
