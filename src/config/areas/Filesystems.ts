import { basename, isAbsolute } from "node:path"
import type {
  FilesystemAccessMode,
  FilesystemDriver,
  FilesystemShare
} from "../../domain/Config.ts"
import type { HostFacts } from "../../host/HostFacts.ts"
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
    .replace(/^[-.]+|-+$/g, "")
    .slice(0, maximumTagLength)

/**
 * Resolves `FILESYSTEM_*` and `FILESYSTEMn_*`. A numbered share needs its own SOURCE; its
 * DRIVER, ACCESSMODE and READONLY default to the first share's values.
 */
export const resolveFilesystems = (
  reader: EnvReader,
  host: HostFacts
): ReadonlyArray<FilesystemShare> => {
  if (!fields.some((field) => reader.isSet(`FILESYSTEM_${field}`))) {
    const numbered = Object.keys(reader.env).some((key) => /^FILESYSTEM\d+_/.test(key))
    if (numbered)
      reader.problem("FILESYSTEM_SOURCE", "required because FILESYSTEMn_* variables are set")
    return []
  }
  const indexes = indexedFamily(reader, "FILESYSTEM", fields, "SOURCE")
  const shares: Array<FilesystemShare> = []
  for (const index of indexes) {
    const prefix = prefixFor(index)
    const first = shares[0]
    const source = reader.get(`${prefix}_SOURCE`)
    const driver = reader.choice<FilesystemDriver>(
      `${prefix}_DRIVER`,
      first?.driver ?? "virtiofs",
      ["virtiofs", "9p"]
    )
    const accessMode = reader.choice<FilesystemAccessMode>(
      `${prefix}_ACCESSMODE`,
      first?.accessMode ?? "passthrough",
      ["passthrough", "mapped", "squash"]
    )
    const readonly = reader.bool(`${prefix}_READONLY`, first?.readonly ?? false)
    if (source === undefined || !isAbsolute(source)) {
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
        `expected a directory, but it is a ${kind}`,
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
    const tag = reader.get(`${prefix}_TARGET`) ?? deriveTag(source)
    if (!tagPattern.test(tag) || tag.length > maximumTagLength) {
      reader.problem(
        `${prefix}_TARGET`,
        `expected a tag of letters, digits, '.', '_' and '-', at most ${maximumTagLength} characters`,
        `${prefix}_TARGET=share`
      )
    } else if (!reader.isSet(`${prefix}_TARGET`)) {
      reader.notes.push(
        `${prefix}_TARGET is ${tag}, from ${prefix}_SOURCE; the guest mounts it at /mnt/${tag}`
      )
    }
    if (shares.some((share) => share.tag === tag)) {
      reader.problem(
        `${prefix}_TARGET`,
        `another share already uses the tag ${tag}`,
        `${prefix}_TARGET=${tag}2`
      )
    }
    shares.push({ index, source, tag, driver, accessMode, readonly })
  }
  return shares
}
