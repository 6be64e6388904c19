import type { Brand } from "effect"

/** A whole number of bytes. */
export type ByteSize = number & Brand.Brand<"ByteSize">

export const KiB = 1024
export const MiB = 1024 * KiB
export const GiB = 1024 * MiB
export const TiB = 1024 * GiB

const unitFactors: Record<string, number> = { "": 1, K: KiB, M: MiB, G: GiB, T: TiB }

/**
 * Parses a size such as `20G`, `20GiB`, `20GB`, `512M`, `1T` or `1073741824`.
 *
 * NOTE: every suffix is binary (powers of 1024), as in qemu-img and Docker, so `20GB` means
 * 20 GiB. Returns undefined for anything else, including zero, signs and fractions.
 */
export const parseByteSize = (raw: string): ByteSize | undefined => {
  const match = /^(\d+)\s*(?:([KMGT])(?:i?B)?|B)?$/i.exec(raw.trim())
  if (match === null) return undefined
  const factor = unitFactors[(match[2] ?? "").toUpperCase()] ?? 1
  const bytes = Number(match[1]) * factor
  if (!Number.isSafeInteger(bytes) || bytes <= 0) return undefined
  return bytes as ByteSize
}

export const byteSize = (bytes: number): ByteSize => Math.floor(bytes) as ByteSize

/** Formats a size with the largest binary unit that divides it, for qemu-img and messages. */
export const formatByteSize = (size: ByteSize): string => {
  for (const [suffix, factor] of [
    ["T", TiB],
    ["G", GiB],
    ["M", MiB],
    ["K", KiB]
  ] as const) {
    if (size % factor === 0) return `${size / factor}${suffix}`
  }
  return `${size}`
}

/** Formats a size for people, with one decimal: `1.5 GiB`. */
export const humanByteSize = (size: number): string => {
  for (const [unit, factor] of [
    ["TiB", TiB],
    ["GiB", GiB],
    ["MiB", MiB],
    ["KiB", KiB]
  ] as const) {
    if (size >= factor) return `${(size / factor).toFixed(1)} ${unit}`
  }
  return `${size} B`
}
