/**
 * Content sniffing for boot sources: decides what a file is from its first and last bytes, with
 * no I/O. The file name is never consulted here, so a `.img` that contains qcow2 and a raw disk
 * renamed `.iso` are both classified by their content.
 */

/** Disk image formats that qemu-img reads; every one but qcow2 is converted before use. */
export type DiskFormat = "qcow2" | "qcow" | "vmdk" | "vhd" | "vhdx" | "vdi" | "raw"

/** Single-stream compression that wraps exactly one file. */
export type CompressionFormat = "gzip" | "xz" | "bzip2" | "zstd"

/** Containers of several members; OVA is a tar whose first member is the OVF descriptor. */
export type ArchiveFormat = "tar" | "ova" | "zip" | "7z"

export type ImageFormat = "iso" | DiskFormat | CompressionFormat | ArchiveFormat | "html" | "empty"

export type PartitionTable = "mbr" | "gpt"

export interface Detection {
  readonly format: ImageFormat
  /** For `raw` only: the partition table found, or undefined when the content is unrecognised. */
  readonly partitionTable?: PartitionTable | undefined
  /** The signature that decided the format, for debug logs and error messages. */
  readonly evidence: string
}

/** The bytes detection looks at: the first `sampleHeadLength` bytes and the last 512. */
export interface Sample {
  readonly head: Uint8Array
  readonly tail: Uint8Array
  readonly size: number
}

/**
 * ISO 9660 volume descriptors start at sector 16 of 2048-byte sectors (byte 32768) and the set
 * may hold several, so 64 KiB covers the first ones and every other signature checked here.
 */
export const sampleHeadLength = 64 * 1024
export const sampleTailLength = 512

const ascii = (bytes: Uint8Array, offset: number, length: number): string =>
  offset < 0 ? "" : String.fromCharCode(...bytes.subarray(offset, offset + length))

const startsWithBytes = (bytes: Uint8Array, signature: ReadonlyArray<number>, offset = 0) =>
  bytes.length >= offset + signature.length &&
  signature.every((byte, index) => bytes[offset + index] === byte)

const u32le = (bytes: Uint8Array, offset: number): number =>
  bytes.length < offset + 4
    ? -1
    : ((bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16)) >>> 0) +
      bytes[offset + 3]! * 0x1000000

const u32be = (bytes: Uint8Array, offset: number): number =>
  bytes.length < offset + 4
    ? -1
    : bytes[offset]! * 0x1000000 +
      ((bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!)

interface Signature {
  readonly format: ImageFormat
  readonly evidence: string
  readonly matches: (sample: Sample) => boolean
}

/** Volume descriptor identifiers: ISO 9660 (`CD001`) and the UDF volume recognition sequence. */
const isoIdentifiers = ["CD001", "BEA01", "NSR02", "NSR03"]
const isoDescriptorOffsets = [0x8001, 0x8801, 0x9001, 0x9801]

const isIso = (sample: Sample): boolean =>
  isoDescriptorOffsets.some((offset) => isoIdentifiers.includes(ascii(sample.head, offset, 5)))

/** Header checksum of a tar block: the byte sum with the checksum field read as spaces. */
export const tarHeaderChecksumValid = (block: Uint8Array): boolean => {
  if (block.length < 512) return false
  const stored = Number.parseInt(
    ascii(block, 148, 8)
      .replace(/[\0 ]+/g, " ")
      .trim(),
    8
  )
  if (!Number.isFinite(stored)) return false
  let sum = 0
  for (let index = 0; index < 512; index++) {
    sum += index >= 148 && index < 156 ? 0x20 : block[index]!
  }
  return sum === stored && block[0] !== 0
}

const isTar = (sample: Sample): boolean =>
  ascii(sample.head, 257, 5) === "ustar" || tarHeaderChecksumValid(sample.head)

const firstTarMemberName = (head: Uint8Array): string => {
  const end = head.subarray(0, 100).indexOf(0)
  return ascii(head, 0, end === -1 ? 100 : end)
}

/**
 * Signatures in the order they are tried. Formats with a magic number at byte 0 come first;
 * ISO comes before the partition-table checks because a hybrid ISO also carries an MBR.
 */
const signatures: ReadonlyArray<Signature> = [
  {
    format: "qcow2",
    evidence: "QFI\\xfb magic, version 2 or 3",
    matches: ({ head }) =>
      startsWithBytes(head, [0x51, 0x46, 0x49, 0xfb]) && [2, 3].includes(u32be(head, 4))
  },
  {
    format: "qcow",
    evidence: "QFI\\xfb magic, version 1",
    matches: ({ head }) => startsWithBytes(head, [0x51, 0x46, 0x49, 0xfb]) && u32be(head, 4) === 1
  },
  {
    format: "vmdk",
    evidence: "VMDK sparse extent magic (KDMV or COWD)",
    matches: ({ head }) => ["KDMV", "COWD"].includes(ascii(head, 0, 4))
  },
  {
    format: "vmdk",
    evidence: "VMDK descriptor file",
    matches: ({ head }) => ascii(head, 0, 21) === "# Disk DescriptorFile"
  },
  {
    format: "vhdx",
    evidence: "vhdxfile signature",
    matches: ({ head }) => ascii(head, 0, 8) === "vhdxfile"
  },
  {
    format: "vdi",
    evidence: "VDI signature 0xbeda107f at byte 64",
    matches: ({ head }) => u32le(head, 0x40) === 0xbeda107f
  },
  {
    format: "vhd",
    evidence: "conectix footer",
    // A dynamic VHD copies its footer to byte 0; a fixed one has it only in the last 512 bytes
    // (511 in images written by some old tools).
    matches: ({ head, tail }) =>
      ascii(head, 0, 8) === "conectix" ||
      ascii(tail, tail.length - 512, 8) === "conectix" ||
      ascii(tail, tail.length - 511, 8) === "conectix"
  },
  {
    format: "gzip",
    evidence: "gzip magic 1f 8b",
    matches: ({ head }) => startsWithBytes(head, [0x1f, 0x8b, 0x08])
  },
  {
    format: "xz",
    evidence: "xz magic fd 37 7a 58 5a 00",
    matches: ({ head }) => startsWithBytes(head, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])
  },
  {
    format: "bzip2",
    evidence: "BZh magic",
    matches: ({ head }) =>
      ascii(head, 0, 3) === "BZh" &&
      head[3] !== undefined &&
      head[3] >= 0x31 &&
      head[3] <= 0x39 &&
      (startsWithBytes(head, [0x31, 0x41, 0x59, 0x26, 0x53, 0x59], 4) ||
        startsWithBytes(head, [0x17, 0x72, 0x45, 0x38, 0x50, 0x90], 4))
  },
  {
    format: "zstd",
    evidence: "zstd magic 28 b5 2f fd",
    matches: ({ head }) => startsWithBytes(head, [0x28, 0xb5, 0x2f, 0xfd])
  },
  {
    format: "7z",
    evidence: "7z signature",
    matches: ({ head }) => startsWithBytes(head, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c])
  },
  {
    format: "zip",
    evidence: "PK local file header",
    matches: ({ head }) => ["PK\x03\x04", "PK\x05\x06", "PK\x07\x08"].includes(ascii(head, 0, 4))
  },
  {
    format: "iso",
    evidence: "ISO 9660 or UDF volume descriptor at sector 16",
    matches: isIso
  },
  {
    format: "ova",
    evidence: "tar whose first member is an .ovf descriptor",
    matches: (sample) => isTar(sample) && /\.ovf$/i.test(firstTarMemberName(sample.head))
  },
  { format: "tar", evidence: "tar header", matches: isTar },
  {
    format: "html",
    evidence: "HTML document",
    matches: ({ head }) =>
      /^\s*(<!doctype html|<html)/i.test(ascii(head, 0, 256).replace(/^\uFEFF|^\xEF\xBB\xBF/, ""))
  }
]

const partitionTableOf = (head: Uint8Array): PartitionTable | undefined => {
  // GPT's header sits in LBA 1, which is byte 512 or, on 4Kn disks, byte 4096.
  if (ascii(head, 512, 8) === "EFI PART" || ascii(head, 4096, 8) === "EFI PART") return "gpt"
  if (head[510] === 0x55 && head[511] === 0xaa) return "mbr"
  return undefined
}

/** Classifies a file from its sample; anything unrecognised is reported as `raw`. */
export const detectFormat = (sample: Sample): Detection => {
  if (sample.size === 0) return { format: "empty", evidence: "the file is empty" }
  const signature = signatures.find((candidate) => candidate.matches(sample))
  if (signature !== undefined) return { format: signature.format, evidence: signature.evidence }
  const partitionTable = partitionTableOf(sample.head)
  return partitionTable === undefined
    ? { format: "raw", evidence: "no known signature and no partition table" }
    : { format: "raw", partitionTable, evidence: `${partitionTable.toUpperCase()} partition table` }
}

export const isCompression = (format: ImageFormat): format is CompressionFormat =>
  format === "gzip" || format === "xz" || format === "bzip2" || format === "zstd"

export const isArchive = (format: ImageFormat): format is ArchiveFormat =>
  format === "tar" || format === "ova" || format === "zip" || format === "7z"

export const isDiskFormat = (format: ImageFormat): format is DiskFormat =>
  format === "qcow2" ||
  format === "qcow" ||
  format === "vmdk" ||
  format === "vhd" ||
  format === "vhdx" ||
  format === "vdi" ||
  format === "raw"

/** qemu-img's driver name for a disk format; it calls VHD `vpc`. */
export const qemuDriverName = (format: DiskFormat): string => (format === "vhd" ? "vpc" : format)
