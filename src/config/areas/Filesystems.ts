import { basename, isAbsolute } from "node:path"
import type {
  FilesystemAccessMode,
  FilesystemDriver,
  FilesystemShare
} from "../../domain/Config.ts"
import { describePathKind, type HostFacts } from "../../host/HostFacts.ts"
import type { EnvReader } from "../Env.ts"
import { indexedFamily } from "./Network.ts"

const fields = ["SOURCE", "TARGET", "DRIVER", "ACCESSMODE", "READONLY"] as const
/** virtio-fs tags are at most 36 bytes (virtio specification, device configuration layout). */
export const maximumTagLength = 36
const tagPattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/

const prefixFor = (index: number) => (index === 1 ? "FILESYSTEM" : `FILESYSTEM${index}`)

/** Derives a mount tag from the last segment of a path, replacing unsupported characters. */
export const deriveTag = (source: string): string =>
  basename(source.replace(/\/+$/, ""))
    .replace(/[^A-Za-z0-9._-]/g, "-")
    .replace(/^[-._]+|-+$/g, "")
    .slice(0, maximumTagLength)

const resolveTag = (reader: EnvReader, prefix: string, source: string): string => {
  const explicit = reader.get(`${prefix}_TARGET`)
  const tag = explicit ?? deriveTag(source)
  const rule =
    "letters, digits, '.', '_' and '-', starting with a letter or digit, at most " +
    `${maximumTagLength} characters`
  if (tagPattern.test(tag) && tag.length <= maximumTagLength) {
    if (explicit === undefined) {
      reader.notes.push(
        `${prefix}_TARGET is ${tag}, from ${prefix}_SOURCE; the guest mounts it at /mnt/${tag}`
      )
    }
    return tag
  }
  reader.problem(
    `${prefix}_TARGET`,
    explicit === undefined
      ? `no tag can be derived from ${prefix}_SOURCE=${source}; set a tag of ${rule}`
      : `expected a tag of ${rule}`,
    `${prefix}_TARGET=share`
  )
  return tag
}

/**
 * Resolves `FILESYSTEM_*` and `FILESYSTEMn_*`. A numbered share needs its own SOURCE; its
 * DRIVER, ACCESSMODE and READONLY default to the first share's values, except that a virtiofs
 * share defaults to passthrough, the only access mode virtiofs supports.
 */
export const resolveFilesystems = (
  reader: EnvReader,
  host: HostFacts
): ReadonlyArray<FilesystemShare> => {
  const firstIsSet = fields.some((field) => reader.isSet(`FILESYSTEM_${field}`))
  const indexes = indexedFamily(reader, "FILESYSTEM", fields, "SOURCE", "/share2")
  if (!firstIsSet && indexes.length === 1) return []
  const shares: Array<FilesystemShare> = []
  for (const index of indexes) {
    const prefix = prefixFor(index)
    const first = index === 1 ? undefined : shares.find((share) => share.index === 1)
    const source = reader.get(`${prefix}_SOURCE`)
    const driver = reader.choice<FilesystemDriver>(
      `${prefix}_DRIVER`,
      first?.driver ?? "virtiofs",
      ["virtiofs", "9p"]
    )
    const accessMode = reader.choice<FilesystemAccessMode>(
      `${prefix}_ACCESSMODE`,
      driver === "virtiofs" ? "passthrough" : (first?.accessMode ?? "passthrough"),
      ["passthrough", "mapped", "squash"]
    )
    const readonly = reader.bool(`${prefix}_READONLY`, first?.readonly ?? false)
    if (source === undefined) {
      // indexedFamily has already reported a numbered share without its SOURCE.
      if (index === 1) {
        reader.problem(
          "FILESYSTEM_SOURCE",
          firstIsSet
            ? "expected the absolute path of a directory to share"
            : "required because numbered FILESYSTEMn_* variables are set, and the first " +
                "share has no number",
          "FILESYSTEM_SOURCE=/share"
        )
      }
      continue
    }
    if (!isAbsolute(source)) {
      reader.problem(
        `${prefix}_SOURCE`,
        "expected the absolute path of a directory to share",
        `${prefix}_SOURCE=/share`
      )
      continue
    }
    const kind = host.pathKind(source)
    if (kind !== "directory" && kind !== "missing") {
      reader.problem(
        `${prefix}_SOURCE`,
        `expected a directory, but it is ${describePathKind(kind)}`,
        `${prefix}_SOURCE=/share`
      )
    }
    if (kind === "missing" && readonly) {
      reader.problem(
        `${prefix}_SOURCE`,
        "a read-only share must exist; bind-mount the directory",
        `${prefix}_SOURCE=/share`
      )
    }
    if (driver === "virtiofs" && accessMode !== "passthrough") {
      reader.problem(
        `${prefix}_ACCESSMODE`,
        `virtiofs supports only passthrough; set ${prefix}_DRIVER=9p for mapped or squash`,
        `${prefix}_DRIVER=9p`
      )
    }
    const tag = resolveTag(reader, prefix, source)
    if (shares.some((share) => share.tag === tag)) {
      const origin = reader.isSet(`${prefix}_TARGET`) ? "" : `, derived from ${prefix}_SOURCE,`
      reader.problem(
        `${prefix}_TARGET`,
        `the tag ${tag}${origin} is already used by another share; give each share its own tag`,
        `${prefix}_TARGET=${tag}${index}`
      )
    }
    shares.push({ index, source, tag, driver, accessMode, readonly })
  }
  return shares
}
