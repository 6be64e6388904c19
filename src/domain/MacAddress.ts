import type { Brand } from "effect"

/** A lower-case colon-separated Ethernet address, `52:54:00:12:34:56`. */
export type MacAddress = string & Brand.Brand<"MacAddress">

export const parseMacAddress = (raw: string): MacAddress | undefined => {
  const value = raw.trim().toLowerCase()
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(value)) return undefined
  // Bit 0 of the first octet marks a multicast address, which a NIC cannot use.
  if ((Number.parseInt(value.slice(0, 2), 16) & 0x01) !== 0) return undefined
  return value as MacAddress
}

/**
 * Derives a stable MAC for NIC `nicIndex` (1-based) of the VM `vmName`: QEMU's `52:54:00`
 * prefix, which is already a locally administered unicast prefix, plus the first three bytes of
 * SHA-256("<vmName>:<nicIndex>"). The same inputs always give the same address, so a persistent
 * guest keeps its DHCP lease and interface names across restarts.
 *
 * NOTE: the fourth octet has bit 1 set and bit 0 cleared. Those bits mean nothing outside the
 * first octet, but clearing them now would change every derived address.
 */
export const deriveMacAddress = (vmName: string, nicIndex: number): MacAddress => {
  // Bun's native hasher: loading node:crypto would cost milliseconds at every start.
  const digest = new Bun.CryptoHasher("sha256").update(`${vmName}:${nicIndex}`).digest()
  const first = ((digest[0] ?? 0) | 0x02) & 0xfe
  const octets = [0x52, 0x54, 0x00, first, digest[1] ?? 0, digest[2] ?? 0]
  return octets.map((octet) => octet.toString(16).padStart(2, "0")).join(":") as MacAddress
}
