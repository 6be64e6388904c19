import * as Data from "effect/Data"
import * as Result from "effect/Result"
// NOTE: import this file only once: Bun's bundler keeps one module per path, so a second
// import of distros.yaml with `{ type: "text" }` would turn this one into text as well.
import builtInDocument from "../../distros.yaml"
import { editDistance } from "../config/KnownVariables.ts"
import { normalizeArch } from "../domain/Arch.ts"
import type { Arch, Distro, ImageChecksum } from "../domain/Config.ts"
import { ExitCode } from "../domain/ExitCode.ts"

/** Where a mounted catalogue replaces the built-in one, as in the container image's docs. */
export const mountedCataloguePath = "/config/distros.yaml"

/** The distributions `DISTRO` can name, keyed by `DISTRO` value, in file order. */
export type Catalogue = ReadonlyMap<string, Distro>

/** Where the catalogue came from: the copy built into the binary, or a file. */
export type CatalogueSource =
  | { readonly _tag: "BuiltIn" }
  | { readonly _tag: "File"; readonly path: string }

export const describeSource = (source: CatalogueSource): string =>
  source._tag === "BuiltIn" ? "the built-in catalogue" : source.path

export class CatalogueError extends Data.TaggedError("CatalogueError")<{
  readonly source: string
  readonly problems: ReadonlyArray<string>
}> {
  readonly exitCode = ExitCode.Config
  override get message(): string {
    const lines = this.problems.map((problem) => `  ${problem}`).join("\n")
    return `invalid distribution catalogue ${this.source}:\n${lines}`
  }
}

const hexDigest = { sha256: /^[0-9a-f]{64}$/i, sha512: /^[0-9a-f]{128}$/i } as const
const digestLength = { sha256: 64, sha512: 128 } as const

const entryFields = ["name", "url", "arch", "user", "sha256", "sha512", "checksum_url"]

/**
 * Finds fields that look like misspelt entry fields, such as `sha265` or `checksum-url`, which
 * would otherwise be ignored and silently drop a checksum or an architecture. Other unknown
 * fields stay allowed, because older catalogues carry fields such as `format`.
 */
const misspeltFields = (entry: Record<string, unknown>): Array<[string, string]> =>
  Object.keys(entry).flatMap((field): Array<[string, string]> => {
    if (entryFields.includes(field)) return []
    const limit = field.length <= 4 ? 1 : 2
    const known = entryFields.find((name) => editDistance(field, name, limit) <= limit)
    return known === undefined ? [] : [[field, known]]
  })

const isHttpUrl = (value: unknown): value is string =>
  typeof value === "string" && /^https?:\/\/\S+$/.test(value)

/** Reads one entry, pushing a problem that names the entry and field for each invalid field. */
const parseEntry = (key: string, raw: unknown, problems: Array<string>): Distro | undefined => {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    problems.push(`${key}: expected a mapping with name, url and arch`)
    return undefined
  }
  const entry = raw as Record<string, unknown>
  const before = problems.length
  const field = (name: string, message: string) => problems.push(`${key}.${name}: ${message}`)

  if (!/^[a-z0-9][a-z0-9._-]*$/.test(key)) {
    problems.push(`${key}: keys may contain only a-z, 0-9, '.', '_' and '-'`)
  }
  for (const [misspelt, known] of misspeltFields(entry)) {
    field(misspelt, `unknown field; did you mean ${known}?`)
  }
  const name = entry.name ?? key
  if (typeof name !== "string" || name.trim() === "") field("name", "expected a non-empty string")
  if (!isHttpUrl(entry.url)) {
    field("url", `expected an http:// or https:// URL, got ${JSON.stringify(entry.url ?? null)}`)
  }
  let arch: Arch | undefined = "x86_64"
  if (entry.arch !== undefined) {
    arch = typeof entry.arch === "string" ? normalizeArch(entry.arch) : undefined
    if (arch === undefined) {
      field("arch", `expected x86_64 or aarch64, got ${JSON.stringify(entry.arch)}`)
    }
  }
  const user = entry.user ?? "user"
  if (typeof user !== "string" || !/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) {
    field("user", `expected a Linux user name such as "user", got ${JSON.stringify(user)}`)
  }

  const checksums: Array<ImageChecksum> = []
  for (const algorithm of ["sha256", "sha512"] as const) {
    const value = entry[algorithm]
    if (value === undefined) continue
    if (typeof value === "string" && hexDigest[algorithm].test(value)) {
      checksums.push({ _tag: "Digest", algorithm, hex: value.toLowerCase() })
    } else {
      field(
        algorithm,
        `expected a ${algorithm} digest of ${digestLength[algorithm]} hex digits, ` +
          `got ${JSON.stringify(value)}`
      )
    }
  }
  if (entry.checksum_url !== undefined) {
    if (isHttpUrl(entry.checksum_url)) {
      checksums.push({ _tag: "SumsFile", url: entry.checksum_url })
    } else {
      field(
        "checksum_url",
        `expected an http:// or https:// URL, got ${JSON.stringify(entry.checksum_url)}`
      )
    }
  }
  const checksumFields = ["sha256", "sha512", "checksum_url"].filter((name) => name in entry)
  if (checksumFields.length > 1) {
    problems.push(
      `${key}: expected at most one of sha256, sha512 and checksum_url, got ` +
        checksumFields.join(" and ")
    )
  }
  if (problems.length > before) return undefined
  return {
    key,
    name: (name as string).trim(),
    url: entry.url as string,
    arch: arch as Arch,
    user: user as string,
    checksum: checksums[0]
  }
}

/** Parses catalogue YAML, collecting every problem before failing. */
export const parseCatalogue = (
  text: string,
  source: string
): Result.Result<Catalogue, CatalogueError> => {
  let document: unknown
  try {
    document = Bun.YAML.parse(text)
  } catch (error) {
    const problems = [`not valid YAML: ${(error as Error).message}`]
    return Result.fail(new CatalogueError({ source, problems }))
  }
  const duplicates = duplicateEntryKeys(text)
  if (duplicates.length > 0) {
    const problems = duplicates.map(
      (key) => `${key}: defined twice; the later entry would hide the first`
    )
    return Result.fail(new CatalogueError({ source, problems }))
  }
  return parseCatalogueDocument(document, source)
}

/**
 * Finds entry keys that appear twice under `distributions:`, which Bun's YAML parser accepts
 * silently (the last one wins).
 *
 * NOTE: this reads the block layout line by line, so it misses duplicates written in flow
 * style (`{a: ..., a: ...}`); catalogues are written in block style.
 */
export const duplicateEntryKeys = (text: string): ReadonlyArray<string> => {
  const lines = text.split("\n")
  const start = lines.findIndex((line) => /^distributions:\s*(#.*)?$/.test(line))
  if (start === -1) return []
  let indent: number | undefined
  const seen = new Set<string>()
  const duplicates: Array<string> = []
  for (const line of lines.slice(start + 1)) {
    if (/^\S/.test(line)) break
    const match = /^( +)([^\s#:'"][^:]*|'[^']*'|"[^"]*"):\s*(#.*)?$/.exec(line)
    if (match === null) continue
    const width = match[1]?.length ?? 0
    indent ??= width
    if (width !== indent) continue
    const key = (match[2] ?? "").replace(/^['"]|['"]$/g, "")
    if (seen.has(key)) duplicates.push(key)
    seen.add(key)
  }
  return duplicates
}

/** Checks a parsed catalogue document, collecting every problem before failing. */
export const parseCatalogueDocument = (
  document: unknown,
  source: string
): Result.Result<Catalogue, CatalogueError> => {
  const fail = (problems: ReadonlyArray<string>) =>
    Result.fail(new CatalogueError({ source, problems }))
  const distributions =
    typeof document === "object" && document !== null
      ? (document as Record<string, unknown>).distributions
      : undefined
  if (typeof distributions !== "object" || distributions === null || Array.isArray(distributions)) {
    return fail(["expected a top-level mapping 'distributions:' of keys to entries"])
  }
  const problems: Array<string> = []
  const catalogue = new Map<string, Distro>()
  for (const [key, raw] of Object.entries(distributions)) {
    const distro = parseEntry(key, raw, problems)
    if (distro !== undefined) catalogue.set(key, distro)
  }
  if (problems.length > 0) return fail(problems)
  if (catalogue.size === 0) return fail(["the catalogue has no entries"])
  return Result.succeed(catalogue)
}

/** The built-in catalogue; Bun's bundler parsed its YAML at build time. */
export const builtInCatalogue = (): Result.Result<Catalogue, CatalogueError> =>
  parseCatalogueDocument(builtInDocument, "the built-in catalogue")
