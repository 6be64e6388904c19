import { tarHeaderChecksumValid } from "./Detect.ts"

/**
 * A reader for tar member headers (POSIX ustar, pax and GNU extensions), used to check member
 * paths before anything is extracted. It reads only the 512-byte headers and skips the data, so
 * listing a multi-gigabyte archive costs a few reads.
 */

export type TarMemberType = "file" | "directory" | "symlink" | "hardlink" | "other"

export interface TarMember {
  /** The path as tar reports it, after pax and GNU long-name records are applied. */
  readonly name: string
  readonly type: TarMemberType
  /** The size of the extracted file; for sparse members, the expanded size. */
  readonly size: number
  readonly linkName: string
}

/** Reads `length` bytes at `offset`; may return fewer at the end of the file. */
export type ReadAt = (offset: number, length: number) => Uint8Array

const blockSize = 512

const decoder = new TextDecoder()

const cString = (block: Uint8Array, offset: number, length: number): string => {
  const field = block.subarray(offset, offset + length)
  const end = field.indexOf(0)
  return decoder.decode(end === -1 ? field : field.subarray(0, end))
}

/** Reads a numeric field: octal text, or GNU base-256 (high bit set) for 8 GiB and more. */
const numeric = (block: Uint8Array, offset: number, length: number): number => {
  const field = block.subarray(offset, offset + length)
  if ((field[0]! & 0x80) !== 0) {
    let value = field[0]! & 0x7f
    for (const byte of field.subarray(1)) value = value * 256 + byte
    return value
  }
  const text = cString(block, offset, length).trim()
  return text === "" ? 0 : Number.parseInt(text, 8)
}

/** Parses pax extended header records: `<length> <key>=<value>\n`, lengths in decimal bytes. */
export const parsePaxRecords = (data: Uint8Array): Map<string, string> => {
  const records = new Map<string, string>()
  let offset = 0
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset)
    if (space === -1) break
    const length = Number.parseInt(decoder.decode(data.subarray(offset, space)), 10)
    if (!Number.isFinite(length) || length <= 0) break
    const record = decoder.decode(data.subarray(space + 1, offset + length - 1))
    const equals = record.indexOf("=")
    if (equals > 0) records.set(record.slice(0, equals), record.slice(equals + 1))
    offset += length
  }
  return records
}

const typeOf = (flag: string): TarMemberType => {
  switch (flag) {
    case "0":
    case "\0":
    case "7":
    case "S":
      return "file"
    case "1":
      return "hardlink"
    case "2":
      return "symlink"
    case "5":
      return "directory"
    default:
      return "other"
  }
}

export class TarFormatError extends Error {
  constructor(
    readonly offset: number,
    readonly reason: string
  ) {
    super(`invalid tar header at byte ${offset}: ${reason}`)
  }
}

/** Overrides that pax and GNU records set for the header that follows them. */
interface PendingNames {
  name?: string
  linkName?: string
  /** The extracted size, when it differs from the data stored in the archive (sparse files). */
  size?: number
  /** The pax `size` record, which replaces the header's size field (files of 8 GiB and more). */
  storedSize?: number
}

/**
 * Lists every member of a tar file. Throws `TarFormatError` when a header is damaged or the
 * archive ends inside a member.
 */
export const listTarMembers = (readAt: ReadAt, fileSize: number): ReadonlyArray<TarMember> => {
  const members: Array<TarMember> = []
  let pending: PendingNames = {}
  let offset = 0
  while (offset + blockSize <= fileSize) {
    const block = readAt(offset, blockSize)
    if (block.length < blockSize) throw new TarFormatError(offset, "the file ends inside a header")
    if (block.every((byte) => byte === 0)) break
    if (!tarHeaderChecksumValid(block)) throw new TarFormatError(offset, "checksum mismatch")

    const flag = String.fromCharCode(block[156]!)
    const isExtension = ["L", "K", "x", "g"].includes(flag)
    const storedSize = (isExtension ? undefined : pending.storedSize) ?? numeric(block, 124, 12)
    const dataOffset = offset + blockSize
    const next = dataOffset + Math.ceil(storedSize / blockSize) * blockSize
    if (next > fileSize) throw new TarFormatError(offset, "the file ends inside a member")
    const readData = () => readAt(dataOffset, storedSize)

    if (flag === "L" || flag === "K") {
      const value = cString(readData(), 0, storedSize)
      pending = flag === "L" ? { ...pending, name: value } : { ...pending, linkName: value }
    } else if (flag === "x") {
      const records = parsePaxRecords(readData())
      const name = records.get("GNU.sparse.name") ?? records.get("path")
      const size = records.get("GNU.sparse.realsize") ?? records.get("GNU.sparse.size")
      const linkName = records.get("linkpath")
      const paxSize = records.get("size")
      if (name !== undefined) pending.name = name
      if (linkName !== undefined) pending.linkName = linkName
      if (size !== undefined) pending.size = Number(size)
      if (paxSize !== undefined) pending.storedSize = Number(paxSize)
    } else if (flag !== "g") {
      // POSIX ustar splits long names into prefix/name; GNU headers use that area for times.
      const posix = cString(block, 257, 6) === "ustar" && cString(block, 263, 2) === "00"
      const prefix = posix ? cString(block, 345, 155) : ""
      const headerName = cString(block, 0, 100)
      // Old GNU sparse members store the expanded size at byte 483.
      const sparseSize = flag === "S" ? numeric(block, 483, 12) : undefined
      members.push({
        name: pending.name ?? (prefix === "" ? headerName : `${prefix}/${headerName}`),
        type: typeOf(flag),
        size: pending.size ?? sparseSize ?? storedSize,
        linkName: pending.linkName ?? cString(block, 157, 100)
      })
      pending = {}
    }
    offset = next
  }
  return members
}

/**
 * Returns why an archive member's path is unsafe to extract, or undefined when it stays inside
 * the target directory: absolute paths, drive letters, `..` components and NUL bytes are not.
 */
export const unsafeMemberPath = (name: string): string | undefined => {
  if (name.includes("\0")) return "contains a NUL byte"
  if (name.startsWith("/") || name.startsWith("\\")) return "is an absolute path"
  if (/^[A-Za-z]:/.test(name)) return "starts with a drive letter"
  if (name.split(/[/\\]/).includes("..")) return "contains a '..' component"
  return undefined
}
