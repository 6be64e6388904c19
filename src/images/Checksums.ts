/**
 * Parsing of checksum lists as distributions publish them: GNU coreutils output (`SHA256SUMS`,
 * `hex  name` or `hex *name`) and BSD-style tags (`SHA256 (name) = hex`, as in Fedora's
 * `CHECKSUM`), possibly wrapped in an OpenPGP clear-signed message. Pure functions only.
 */

export type DigestAlgorithm = "sha256" | "sha512"

export interface Digest {
  readonly algorithm: DigestAlgorithm
  /** Lower-case hex. */
  readonly hex: string
}

export interface SumsEntry {
  /** The name as listed, without a leading `./` or `*`. */
  readonly fileName: string
  readonly digest: Digest
}

const algorithmByHexLength: Record<number, DigestAlgorithm> = { 64: "sha256", 128: "sha512" }

const bsdTags: Record<string, DigestAlgorithm> = {
  SHA256: "sha256",
  "SHA2-256": "sha256",
  SHA512: "sha512",
  "SHA2-512": "sha512"
}

/** GNU coreutils: `hex`, one space, then a space (text) or `*` (binary), then the name. */
const gnuLine = /^\\?([0-9a-fA-F]+) [ *]?(.+)$/
/** BSD `--tag` style; the name may itself contain parentheses. */
const bsdLine = /^([A-Z0-9-]+) ?\((.+)\) ?= ?([0-9a-fA-F]+)$/

/** GNU tools escape names holding a newline or backslash and mark the line with a leading `\`. */
const unescapeGnuName = (name: string): string =>
  name.replace(/\\(\\|n|r)/g, (_, code: string) =>
    code === "n" ? "\n" : code === "r" ? "\r" : "\\"
  )

const normalizeName = (name: string): string => name.replace(/^\.\//, "")

const parseLine = (line: string): SumsEntry | undefined => {
  const bsd = bsdLine.exec(line)
  if (bsd !== null) {
    const algorithm = bsdTags[bsd[1]!.toUpperCase()]
    const hex = bsd[3]!.toLowerCase()
    if (algorithm === undefined || algorithmByHexLength[hex.length] !== algorithm) return undefined
    return { fileName: normalizeName(bsd[2]!), digest: { algorithm, hex } }
  }
  const gnu = gnuLine.exec(line)
  if (gnu === null) return undefined
  const algorithm = algorithmByHexLength[gnu[1]!.length]
  if (algorithm === undefined) return undefined
  const name = line.startsWith("\\") ? unescapeGnuName(gnu[2]!) : gnu[2]!
  return { fileName: normalizeName(name), digest: { algorithm, hex: gnu[1]!.toLowerCase() } }
}

/**
 * Lists every sha256 and sha512 entry of a checksum file. Lines in other algorithms, comments,
 * and the OpenPGP armour and signature of a clear-signed file are skipped.
 */
export const parseSumsFile = (text: string): ReadonlyArray<SumsEntry> => {
  const entries: Array<SumsEntry> = []
  let inSignature = false
  for (const rawLine of text.split("\n")) {
    const line = rawLine.replace(/\r$/, "").trim()
    if (line.startsWith("-----BEGIN PGP SIGNATURE")) inSignature = true
    if (line.startsWith("-----END PGP SIGNATURE")) inSignature = false
    if (inSignature || line === "" || line.startsWith("#")) continue
    const entry = parseLine(line)
    if (entry !== undefined) entries.push(entry)
  }
  return entries
}

const baseName = (name: string): string => name.slice(name.lastIndexOf("/") + 1)

/**
 * Picks the digest listed for `fileName`. An exact match wins; otherwise an entry in a
 * subdirectory (`images/name`) counts when exactly one entry has that base name. When a file is
 * listed in both algorithms, sha512 is preferred.
 */
export const findDigest = (
  entries: ReadonlyArray<SumsEntry>,
  fileName: string
): Digest | undefined => {
  const exact = entries.filter((entry) => entry.fileName === fileName)
  const candidates =
    exact.length > 0 ? exact : entries.filter((entry) => baseName(entry.fileName) === fileName)
  const names = new Set(candidates.map((entry) => entry.fileName))
  if (names.size !== 1) return undefined
  return (
    candidates.find((entry) => entry.digest.algorithm === "sha512")?.digest ?? candidates[0]?.digest
  )
}

/** The last path segment of a URL, percent-decoded, which is how sums files name the image. */
export const fileNameOfUrl = (url: string): string => {
  const segment =
    new URL(url).pathname
      .split("/")
      .filter((part) => part !== "")
      .at(-1) ?? ""
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}
