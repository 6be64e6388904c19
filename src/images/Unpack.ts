import { closeSync, lstatSync, openSync, readdirSync, readSync, symlinkSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { Data, Effect } from "effect"
import { ExitCode } from "../domain/ExitCode.ts"
import { Exec } from "../process/Exec.ts"
import {
  type ArchiveFormat,
  type CompressionFormat,
  type Detection,
  detectFormat,
  isArchive,
  isCompression,
  isDiskFormat
} from "./Detect.ts"
import {
  ensureDirectory,
  ensureSpace,
  fileOperation,
  formatSize,
  freeBytes,
  readSample,
  removeQuietly,
  writeFileAtomic
} from "./Files.ts"
import { listTarMembers, TarFormatError, type TarMember, unsafeMemberPath } from "./Tar.ts"

/** An archive contains a link, or a member that could write outside the target directory. */
export class UnsafeArchive extends Data.TaggedError("UnsafeArchive")<{
  readonly archive: string
  readonly member: string
  readonly reason: string
}> {
  readonly exitCode = ExitCode.Image
  override get message(): string {
    return (
      `rejected archive ${this.archive}: member ${JSON.stringify(this.member)} ${this.reason}; ` +
      "nothing was extracted"
    )
  }
}

export class UnpackError extends Data.TaggedError("UnpackError")<{
  readonly source: string
  readonly reason: string
}> {
  readonly exitCode = ExitCode.Image
  override get message(): string {
    return `cannot unpack ${this.source}: ${this.reason}`
  }
}

export interface UnpackedImage {
  /** The disk image or ISO at the centre of the layers; `source` itself when it was neither. */
  readonly path: string
  readonly detection: Detection
  /** The layers removed, outermost first, such as `["xz", "tar"]`. */
  readonly layers: ReadonlyArray<string>
}

/** `.tar.xz` is two layers; four leave room for an archive inside an archive, and stop loops. */
const maxLayers = 4
/** An unrecognised member smaller than this is a manifest, a README or a signature. */
const minimumDiskSize = 1024 * 1024

export const detectFile = (path: string) =>
  readSample(path).pipe(Effect.map((sample) => detectFormat(sample)))

const compressionSuffix: Record<CompressionFormat, string> = {
  gzip: ".gz",
  xz: ".xz",
  bzip2: ".bz2",
  zstd: ".zst"
}

/** Expected decompressed size, from the format's own index where it keeps one. */
const expectedDecompressedSize = (path: string, format: CompressionFormat, size: number) =>
  Effect.gen(function* () {
    const exec = yield* Exec
    if (format === "xz") {
      // `xz --robot --list`: column 5 of the totals line is the uncompressed size.
      const result = yield* exec.run(["xz", "--robot", "--list", path], { allowFailure: true })
      const totals = result.text.split("\n").find((line) => line.startsWith("totals"))
      const uncompressed = Number(totals?.split("\t")[4])
      if (Number.isFinite(uncompressed) && uncompressed > 0) return uncompressed
    }
    if (format === "zstd") {
      const result = yield* exec.run(["zstd", "-l", "-v", path], { allowFailure: true })
      const match = /Decompressed Size:.*\((\d+) B\)/.exec(result.text + result.stderr)
      if (match !== null) return Number(match[1])
    }
    if (format === "gzip") {
      // NOTE: gzip stores the size modulo 4 GiB in its last 4 bytes, so for larger files this is
      // only a lower bound. The compressed size is the floor either way.
      const isize = yield* fileOperation("read", path, () => {
        const fd = openSync(path, "r")
        try {
          const trailer = new Uint8Array(4)
          readSync(fd, trailer, 0, 4, Math.max(0, size - 4))
          return new DataView(trailer.buffer).getUint32(0, true)
        } finally {
          closeSync(fd)
        }
      })
      return Math.max(isize, size)
    }
    // bzip2 keeps no size; the compressed size is a lower bound.
    return size
  })

const decompress = (source: string, format: CompressionFormat, target: string) =>
  Effect.gen(function* () {
    const exec = yield* Exec
    const size = yield* fileOperation("read", source, () => lstatSync(source).size)
    const expected = yield* expectedDecompressedSize(source, format, size)
    yield* ensureSpace(dirname(target), expected, `decompressing ${format}`, freeBytes)
    yield* Effect.logInfo(`decompressing ${format} (${formatSize(expected)}): ${source}`)
    if (format === "zstd") {
      yield* exec.run(["zstd", "-d", "-q", "-f", "-o", target, "--", source], {
        failureExitCode: ExitCode.Image
      })
      return
    }
    // gzip, xz and bzip2 have no output-file option; they decompress `name.xz` to `name` beside
    // it. A symbolic link in the work directory keeps the source (perhaps the user's file)
    // untouched: `-k` keeps the link and `-f` lets the tool read through it.
    const link = `${target}${compressionSuffix[format]}`
    yield* fileOperation("link", link, () => symlinkSync(source, link))
    yield* exec
      .run([format, "-d", "-k", "-f", "--", link], { failureExitCode: ExitCode.Image })
      .pipe(Effect.ensuring(removeQuietly(link)))
  })

/** Rejects the whole archive at its first unsafe member, before anything is written. */
const checkMembers = (
  archive: string,
  members: ReadonlyArray<{ readonly name: string; readonly link: boolean }>
) =>
  Effect.forEach(members, (member) => {
    const reason = unsafeMemberPath(member.name)
    if (reason !== undefined) {
      return Effect.fail(new UnsafeArchive({ archive, member: member.name, reason }))
    }
    if (member.link) {
      return Effect.fail(
        new UnsafeArchive({ archive, member: member.name, reason: "is a symbolic link" })
      )
    }
    return Effect.void
  }).pipe(Effect.asVoid)

const readTarMembers = (archive: string) =>
  Effect.try({
    try: (): ReadonlyArray<TarMember> => {
      const fd = openSync(archive, "r")
      try {
        const size = lstatSync(archive).size
        return listTarMembers((offset, length) => {
          const buffer = new Uint8Array(length)
          const read = readSync(fd, buffer, 0, length, offset)
          return buffer.subarray(0, read)
        }, size)
      } finally {
        closeSync(fd)
      }
    },
    catch: (cause) =>
      new UnpackError({
        source: archive,
        reason: cause instanceof TarFormatError ? cause.message : String(cause)
      })
  })

/**
 * Extracts the regular files of a tar archive. Links, devices and FIFOs are never created,
 * because only regular members are named on tar's command line. A member path with `..` or a
 * leading `/` rejects the whole archive.
 */
const extractTar = (archive: string, directory: string) =>
  Effect.gen(function* () {
    const exec = yield* Exec
    const members = yield* readTarMembers(archive)
    yield* checkMembers(
      archive,
      members.map((member) => ({ name: member.name, link: false }))
    )
    const files = members.filter((member) => member.type === "file")
    const skipped = members.filter(
      (member) => member.type !== "file" && member.type !== "directory"
    )
    if (skipped.length > 0) {
      yield* Effect.logDebug(
        `not extracting ${skipped.length} link or special members of ${archive}: ` +
          skipped.map((member) => member.name).join(", ")
      )
    }
    if (files.length === 0) {
      return yield* new UnpackError({ source: archive, reason: "the archive contains no files" })
    }
    const total = files.reduce((sum, member) => sum + member.size, 0)
    yield* ensureSpace(dirname(directory), total, "extracting the archive", freeBytes)
    yield* ensureDirectory(directory)
    const listFile = `${directory}.members`
    yield* writeFileAtomic(listFile, files.map((member) => `${member.name}\0`).join(""))
    yield* exec
      .run(
        [
          "tar",
          "--extract",
          `--file=${archive}`,
          `--directory=${directory}`,
          "--no-same-owner",
          "--no-same-permissions",
          "--no-wildcards",
          "--no-unquote",
          "--null",
          `--files-from=${listFile}`
        ],
        { failureExitCode: ExitCode.Image }
      )
      .pipe(Effect.ensuring(removeQuietly(listFile)))
  })

interface ListedMember {
  readonly name: string
  readonly directory: boolean
  readonly link: boolean
  readonly size: number
}

/** Parses `7z l -slt -ba`: blocks of `Key = value` lines, one block per member. */
export const parseSevenZipListing = (text: string): ReadonlyArray<ListedMember> =>
  text
    .split(/\n\s*\n/)
    .map((block) => {
      const fields = new Map<string, string>()
      for (const line of block.split("\n")) {
        const equals = line.indexOf(" = ")
        if (equals > 0) fields.set(line.slice(0, equals).trim(), line.slice(equals + 3))
        else if (line.endsWith(" =")) fields.set(line.slice(0, -2).trim(), "")
      }
      const attributes = fields.get("Attributes") ?? ""
      return {
        name: fields.get("Path") ?? "",
        directory: fields.get("Folder") === "+" || /(^|\s)D/.test(attributes),
        // Unix permissions follow the DOS attributes; a link's start with `l`.
        link: /(^|\s)l[rwx-]{9}/.test(attributes),
        size: Number(fields.get("Size") ?? "0") || 0
      }
    })
    .filter((member) => member.name !== "")

/** Extracts a zip or 7z archive with 7z after checking every member path. */
const extractSevenZip = (archive: string, directory: string) =>
  Effect.gen(function* () {
    const exec = yield* Exec
    const listing = yield* exec.run(["7z", "l", "-slt", "-ba", archive], {
      failureExitCode: ExitCode.Image
    })
    const members = parseSevenZipListing(listing.text)
    yield* checkMembers(archive, members)
    const files = members.filter((member) => !member.directory)
    if (files.length === 0) {
      return yield* new UnpackError({ source: archive, reason: "the archive contains no files" })
    }
    const total = files.reduce((sum, member) => sum + member.size, 0)
    yield* ensureSpace(dirname(directory), total, "extracting the archive", freeBytes)
    yield* ensureDirectory(directory)
    // -y answers prompts; -bd hides the percentage indicator, which floods captured output.
    yield* exec.run(["7z", "x", "-y", "-bd", `-o${directory}`, archive], {
      failureExitCode: ExitCode.Image
    })
  })

const extract = (archive: string, format: ArchiveFormat, directory: string) =>
  format === "tar" || format === "ova"
    ? extractTar(archive, directory)
    : extractSevenZip(archive, directory)

/** Lists regular files under `directory`; symbolic links are skipped, never followed. */
const regularFiles = (directory: string): Array<{ path: string; size: number }> => {
  const files: Array<{ path: string; size: number }> = []
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name)
    if (entry.isDirectory()) files.push(...regularFiles(path))
    else if (entry.isFile()) files.push({ path, size: lstatSync(path).size })
  }
  return files
}

/**
 * Orders archive members by how likely each is the bootable image: disk formats with a header,
 * then raw disks with a partition table, ISOs, nested archives, and last unrecognised files of
 * at least 1 MiB in whole 512-byte sectors. Undefined means "not an image".
 */
export const candidateRank = (detection: Detection, size: number): number | undefined => {
  const { format } = detection
  if (isDiskFormat(format) && format !== "raw") return 0
  if (format === "raw" && detection.partitionTable !== undefined) return 1
  if (format === "iso") return 2
  if (isArchive(format) || isCompression(format)) return 3
  if (format === "raw" && size >= minimumDiskSize && size % 512 === 0) return 4
  return undefined
}

/** Picks the image among the extracted files, by type first and by size within a type. */
const pickImage = (archive: string, directory: string) =>
  Effect.gen(function* () {
    const files = yield* fileOperation("list", directory, () => regularFiles(directory))
    const ranked: Array<{ path: string; size: number; rank: number }> = []
    for (const file of files) {
      const rank = candidateRank(yield* detectFile(file.path), file.size)
      if (rank !== undefined) ranked.push({ ...file, rank })
    }
    ranked.sort((a, b) => a.rank - b.rank || b.size - a.size)
    const [best, ...others] = ranked
    if (best === undefined) {
      const names = files.map((file) => relative(directory, file.path)).join(", ")
      return yield* new UnpackError({
        source: archive,
        reason: `no disk image or ISO among its files (${names})`
      })
    }
    if (others.length > 0) {
      yield* Effect.logInfo(
        `using ${relative(directory, best.path)} from ${archive}; also found ` +
          others.map((file) => relative(directory, file.path)).join(", ")
      )
    }
    return best.path
  })

/**
 * Removes compression and archive layers until a disk image or ISO remains, working only in
 * `workDirectory`. `source` is read, never changed; layers made on the way are deleted once the
 * next one exists.
 */
export const unpackImage = Effect.fn("Unpack.unpackImage")(function* (
  source: string,
  workDirectory: string
) {
  let current = source
  let detection = yield* detectFile(source)
  const layers: Array<string> = []
  const dropIntermediate = (path: string) => (path === source ? Effect.void : removeQuietly(path))

  while (isCompression(detection.format) || isArchive(detection.format)) {
    if (layers.length === maxLayers) {
      return yield* new UnpackError({
        source,
        reason: `more than ${maxLayers} nested compression or archive layers`
      })
    }
    const format = detection.format
    const next = join(workDirectory, `layer${layers.length}`)
    yield* ensureDirectory(workDirectory)
    if (isCompression(format)) {
      yield* decompress(current, format, next)
      yield* dropIntermediate(current)
      current = next
    } else if (isArchive(format)) {
      yield* extract(current, format, next)
      const picked = yield* pickImage(current, next)
      yield* dropIntermediate(current)
      current = picked
    }
    layers.push(format)
    detection = yield* detectFile(current)
  }
  return { path: current, detection, layers } satisfies UnpackedImage
})
