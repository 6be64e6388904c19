import {
  chmodSync,
  closeSync,
  fstatSync,
  linkSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statfsSync,
  unlinkSync,
  writeFileSync
} from "node:fs"
import { dirname } from "node:path"
import { Data, Effect } from "effect"
import { ExitCode } from "../domain/ExitCode.ts"
import { type Sample, sampleHeadLength, sampleTailLength } from "./Detect.ts"

/** A file operation of the image cache failed. */
export class ImageFileError extends Data.TaggedError("ImageFileError")<{
  readonly operation: string
  readonly path: string
  readonly detail: string
}> {
  readonly exitCode = ExitCode.Image
  override get message(): string {
    return `cannot ${this.operation} ${this.path}: ${this.detail}`
  }
}

/** There is not enough free space for a download, an unpacked layer or a conversion. */
export class NotEnoughSpace extends Data.TaggedError("NotEnoughSpace")<{
  readonly directory: string
  readonly purpose: string
  readonly required: number
  readonly available: number
}> {
  readonly exitCode = ExitCode.Image
  override get message(): string {
    return (
      `not enough free space in ${this.directory} for ${this.purpose}: ` +
      `${formatSize(this.required)} required, ${formatSize(this.available)} available. ` +
      "Free some space or point DATA_DIR at a larger volume"
    )
  }
}

/** Formats a byte count with one decimal in the largest fitting binary unit. */
export const formatSize = (bytes: number): string => {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`
}

const describe = (cause: unknown): string =>
  cause instanceof Error ? cause.message : String(cause)

/** Runs a synchronous file operation, turning a thrown error into `ImageFileError`. */
export const fileOperation = <A>(operation: string, path: string, run: () => A) =>
  Effect.try({
    try: run,
    catch: (cause) => new ImageFileError({ operation, path, detail: describe(cause) })
  })

/** Reads the first 64 KiB and the last 512 bytes of a file (or block device) for detection. */
export const readSample = (path: string) =>
  fileOperation("read", path, (): Sample => {
    const fd = openSync(path, "r")
    try {
      const stats = fstatSync(fd)
      const head = new Uint8Array(sampleHeadLength)
      const headLength = readSync(fd, head, 0, head.length, 0)
      const size = stats.isBlockDevice() ? Math.max(headLength, stats.size) : stats.size
      const tail = new Uint8Array(Math.min(sampleTailLength, size))
      const tailLength =
        tail.length === 0 ? 0 : readSync(fd, tail, 0, tail.length, size - tail.length)
      return { head: head.subarray(0, headLength), tail: tail.subarray(0, tailLength), size }
    } finally {
      closeSync(fd)
    }
  })

/** Free bytes for an unprivileged writer on the filesystem holding `directory`. */
export const freeBytes = (directory: string): number | undefined => {
  try {
    const stats = statfsSync(directory)
    return stats.bavail * stats.bsize
  } catch {
    return undefined
  }
}

/** Room kept free beyond what an operation needs, so the host's other writers keep working. */
export const spaceReserve = 256 * 1024 * 1024

/** Fails with `NotEnoughSpace` unless `directory` has `required` bytes plus the reserve free. */
export const ensureSpace = (
  directory: string,
  required: number,
  purpose: string,
  measure: (directory: string) => number | undefined = freeBytes
) =>
  Effect.suspend(() => {
    const available = measure(directory)
    if (available === undefined || available >= required + spaceReserve) return Effect.void
    return Effect.fail(new NotEnoughSpace({ directory, purpose, required, available }))
  })

export const ensureDirectory = (path: string) =>
  fileOperation("create directory", path, () => {
    mkdirSync(path, { recursive: true })
  })

/** Deletes a file or directory tree; a missing path is fine. */
export const removeQuietly = (path: string) =>
  Effect.sync(() => rmSync(path, { recursive: true, force: true }))

/** Replaces `path` atomically with `text`, through a temporary file in the same directory. */
export const writeFileAtomic = (path: string, text: string) =>
  fileOperation("write", path, () => {
    const temporary = `${path}.tmp-${process.pid}`
    writeFileSync(temporary, text)
    renameSync(temporary, path)
  })

/**
 * Publishes `source` as the read-only file `target` and removes `source`. An existing `target`
 * is kept as it is, never replaced, because qcow2 overlays may use it as their backing file and
 * every name under the image directory is derived from the content it holds.
 */
export const publishReadOnly = (source: string, target: string) =>
  fileOperation("publish", target, () => {
    chmodSync(source, 0o444)
    mkdirSync(dirname(target), { recursive: true })
    try {
      linkSync(source, target)
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== "EEXIST") throw cause
    }
    unlinkSync(source)
  })

/** Replaces every character outside `[A-Za-z0-9._-]`, for names made from URLs and paths. */
export const safeFileName = (name: string, fallback = "image"): string => {
  const cleaned = name.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+/, "")
  return cleaned === "" ? fallback : cleaned.slice(0, 100)
}

const knownExtensions =
  /\.(qcow2|qcow|img|raw|vmdk|vhdx?|vdi|iso|gz|xz|bz2|zst|zip|7z|tar|tgz|txz|tbz2?|ova)$/i

/** Strips every known image and archive extension: `a.tar.xz` becomes `a`. */
export const stemOf = (name: string): string => {
  let stem = name
  while (knownExtensions.test(stem)) stem = stem.replace(knownExtensions, "")
  return stem === "" ? name : stem
}
