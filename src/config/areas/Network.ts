import type { Arch, Network, NetworkMode, Nic, NicModel, PortForward } from "../../domain/Config.ts"
import { deriveMacAddress, parseMacAddress } from "../../domain/MacAddress.ts"
import type { HostFacts } from "../../host/HostFacts.ts"
import type { EnvReader } from "../Env.ts"

const nicModels: ReadonlyArray<NicModel> = [
  "virtio",
  "e1000",
  "e1000e",
  "rtl8139",
  "ne2k_pci",
  "pcnet",
  "vmxnet3"
]
const nicFields = ["MODE", "BRIDGE", "DIRECT_DEV", "MAC", "MODEL", "MTU", "BOOT"] as const
/** The highest index of NETWORKn_* and FILESYSTEMn_*, so a typo like NETWORK22_MODE is reported. */
export const maximumIndex = 16

/** Directories where Debian (`ipxe-qemu`) and upstream QEMU install the iPXE option ROMs. */
export const ipxeRomDirs = ["/usr/lib/ipxe/qemu", "/usr/share/qemu"]

const prefixFor = (index: number) => (index === 1 ? "NETWORK" : `NETWORK${index}`)

/**
 * Finds the indexes used by a family such as `NETWORK2_MODE` and reports numbering mistakes:
 * `NETWORK1_*` (the first one has no number), indexes above `maximumIndex`, gaps (`NETWORK3_*`
 * without `NETWORK2_*`), and an index whose `trigger` variable is unset. Returns 1 followed by
 * the numbered indexes in order, gaps included, so their values are still checked.
 */
export const indexedFamily = (
  reader: EnvReader,
  base: string,
  fields: ReadonlyArray<string>,
  trigger: string,
  triggerExample: string
): Array<number> => {
  const pattern = new RegExp(`^${base}(\\d+)_(${fields.join("|")})$`)
  const used = new Map<number, Array<string>>()
  for (const [key, value] of Object.entries(reader.env)) {
    const match = pattern.exec(key)
    if (match === null || value === undefined || value.trim() === "") continue
    const index = Number(match[1])
    if (String(index) !== match[1]) {
      reader.problem(
        key,
        `numbered ${base} variables are written without leading zeros`,
        `${base}${index}_${match[2]}=${value.trim()}`
      )
      continue
    }
    if (index < 2) {
      reader.problem(
        key,
        `the first ${base} variables have no number, and numbered ones start at ${base}2_*`,
        `${base}_${match[2]}=${value.trim()}`
      )
      continue
    }
    if (index > maximumIndex) {
      reader.problem(
        key,
        `numbered ${base} variables go from ${base}2_* to ${base}${maximumIndex}_*`,
        `${base}2_${match[2]}=${value.trim()}`
      )
      continue
    }
    used.set(index, [...(used.get(index) ?? []), key].sort())
  }
  const indexes = [...used.keys()].sort((a, b) => a - b)
  let previous = 1
  for (const index of indexes) {
    const keys = used.get(index) ?? []
    const triggerName = `${base}${index}_${trigger}`
    if (index !== previous + 1) {
      const missing = previous + 1
      const key = keys.includes(triggerName) ? triggerName : (keys[0] ?? triggerName)
      reader.problem(
        key,
        `numbered ${base} variables must count up from 2 without gaps, and ` +
          `${base}${missing}_* is not set; renumber them`,
        `${key.replace(`${base}${index}_`, `${base}${missing}_`)}=${reader.get(key) ?? ""}`
      )
    }
    if (!keys.includes(triggerName)) {
      reader.problem(
        triggerName,
        `required because ${keys.join(" and ")} ${keys.length === 1 ? "is" : "are"} set`,
        `${triggerName}=${triggerExample}`
      )
    }
    previous = index
  }
  return [1, ...indexes]
}

const resolveNic = (reader: EnvReader, host: HostFacts, vmName: string, index: number): Nic => {
  const prefix = prefixFor(index)
  const mode = reader.choice<NetworkMode>(`${prefix}_MODE`, "nat", ["nat", "bridge", "direct"])
  const bridge = reader.get(`${prefix}_BRIDGE`)
  const directDevice = reader.get(`${prefix}_DIRECT_DEV`)
  const unused = [
    mode !== "bridge" && bridge !== undefined && [`${prefix}_BRIDGE`, "bridge"],
    mode !== "direct" && directDevice !== undefined && [`${prefix}_DIRECT_DEV`, "direct"]
  ].filter((entry) => entry !== false)
  for (const [variable, needed] of unused) {
    reader.warnings.push(
      `${variable} is ignored because ${prefix}_MODE is ${mode}; set ${prefix}_MODE=${needed} ` +
        "to use it"
    )
  }
  if (mode === "bridge") {
    const kind = bridge === undefined ? undefined : host.netDevice(bridge)
    if (kind !== "bridge") {
      const found =
        bridge === undefined
          ? ""
          : kind === "missing"
            ? `, but ${bridge} does not exist`
            : `, but ${bridge} is not a bridge`
      reader.problem(
        `${prefix}_BRIDGE`,
        `${prefix}_MODE=bridge needs the name of a host bridge${found}; 'ip link show type ` +
          "bridge' lists them, and a container sees them only with --network host",
        `${prefix}_BRIDGE=br0`
      )
    }
  }
  if (
    mode === "direct" &&
    (directDevice === undefined || host.netDevice(directDevice) === "missing")
  ) {
    reader.problem(
      `${prefix}_DIRECT_DEV`,
      `${prefix}_MODE=direct needs an existing host network interface ('ip link' lists them)`,
      `${prefix}_DIRECT_DEV=eth0`
    )
  }
  const macRaw = reader.get(`${prefix}_MAC`)
  const mac = macRaw === undefined ? deriveMacAddress(vmName, index) : parseMacAddress(macRaw)
  if (mac === undefined) {
    reader.problem(
      `${prefix}_MAC`,
      "expected a unicast MAC address: six pairs of hex digits separated by colons, with the " +
        "lowest bit of the first pair clear",
      `${prefix}_MAC=52:54:00:12:34:56`
    )
  }
  const model = reader.choice(`${prefix}_MODEL`, "virtio", nicModels)
  let mtu = reader.isSet(`${prefix}_MTU`)
    ? reader.integer(`${prefix}_MTU`, 1500, { min: 68, max: 65535, example: `${prefix}_MTU=1400` })
    : undefined
  if (mtu === undefined && index === 1) {
    const hostMtu = host.defaultRouteMtu()
    if (hostMtu !== undefined && hostMtu !== 1500) {
      mtu = hostMtu
      reader.notes.push(`NETWORK_MTU set to ${hostMtu}, the MTU of the host's default route`)
    }
  }
  return {
    index,
    mode,
    bridge: mode === "bridge" ? bridge : undefined,
    directDevice: mode === "direct" ? directDevice : undefined,
    mac: mac ?? deriveMacAddress(vmName, index),
    model,
    mtu,
    boot: reader.bool(`${prefix}_BOOT`, false)
  }
}

export const parsePortForwards = (reader: EnvReader): Array<PortForward> => {
  const raw = reader.get("PORT_FWD")
  if (raw === undefined) return []
  const forwards: Array<PortForward> = []
  for (const entry of raw.split(",").map((part) => part.trim())) {
    if (entry === "") continue
    const match = /^(\d{1,5}):(\d{1,5})(?:\/(tcp|udp))?$/i.exec(entry)
    const host = Number(match?.[1])
    const guest = Number(match?.[2])
    if (match === null || host < 1 || host > 65535 || guest < 1 || guest > 65535) {
      reader.problem(
        "PORT_FWD",
        `invalid entry ${JSON.stringify(entry)}; expected comma-separated HOST:GUEST pairs of ` +
          "ports from 1 to 65535, each optionally ending in /tcp or /udp",
        "PORT_FWD=8080:80,5353:53/udp"
      )
      continue
    }
    forwards.push({ protocol: (match[3]?.toLowerCase() ?? "tcp") as "tcp" | "udp", host, guest })
  }
  return forwards
}

const defaultIpxeRom = (host: HostFacts, model: NicModel): string | undefined =>
  ipxeRomDirs.map((dir) => `${dir}/efi-${model}.rom`).find((path) => host.pathKind(path) === "file")

export const resolveNetwork = (
  reader: EnvReader,
  host: HostFacts,
  vmName: string,
  _arch: Arch
): Network => {
  const indexes = indexedFamily(reader, "NETWORK", nicFields, "MODE", "nat")
  const nics = indexes.map((index) => resolveNic(reader, host, vmName, index))
  const seen = new Map<string, number>()
  for (const nic of nics) {
    const other = seen.get(nic.mac)
    if (other !== undefined) {
      // Blame the NIC whose address was set by hand, because two derived addresses collide
      // only when 24 bits of their hashes match.
      const blamed = reader.isSet(`${prefixFor(nic.index)}_MAC`) ? nic.index : other
      const variable = `${prefixFor(blamed)}_MAC`
      reader.problem(
        variable,
        `NIC ${blamed === nic.index ? other : nic.index} already uses MAC ${nic.mac}; give ` +
          `each NIC its own address, or leave ${variable} unset to derive one`,
        `${variable}=${deriveMacAddress(vmName, blamed)}`
      )
    }
    seen.set(nic.mac, nic.index)
  }

  const portForwards = parsePortForwards(reader)
  if (portForwards.length > 0 && !nics.some((nic) => nic.mode === "nat")) {
    reader.problem(
      "PORT_FWD",
      "port forwards need a NIC in NAT mode, but every NIC is bridge or direct; add one " +
        "with NETWORKn_MODE=nat or remove PORT_FWD",
      `NETWORK${nics.length + 1}_MODE=nat`
    )
  }

  const ipxeEnabled = reader.bool("IPXE_ENABLE", false)
  let romPath = reader.get("IPXE_ROM_PATH")
  if (romPath !== undefined && host.pathKind(romPath) !== "file") {
    reader.problem(
      "IPXE_ROM_PATH",
      "expected the path of an iPXE option ROM file, but there is no such file",
      "IPXE_ROM_PATH=/usr/lib/ipxe/qemu/efi-virtio.rom"
    )
  }
  if (ipxeEnabled && romPath === undefined) {
    const model = nics[0]?.model ?? "virtio"
    romPath = defaultIpxeRom(host, model)
    if (romPath === undefined) {
      reader.problem(
        "IPXE_ENABLE",
        `no iPXE ROM for NETWORK_MODEL=${model} in ${ipxeRomDirs.join(" or ")}; install ` +
          "ipxe-qemu or set IPXE_ROM_PATH",
        "IPXE_ROM_PATH=/usr/lib/ipxe/qemu/efi-virtio.rom"
      )
    }
  }
  return {
    nics,
    sshPort: reader.port("SSH_PORT", 2222),
    portForwards,
    ipxe: { enabled: ipxeEnabled, romPath }
  }
}
