import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { randomBytes } from "./TestServer.ts"

/** Runs a tool for a fixture and throws with its stderr when it fails. */
export const run = (argv: ReadonlyArray<string>, cwd?: string): string => {
  const result = Bun.spawnSync([...argv], {
    ...(cwd === undefined ? {} : { cwd }),
    stdout: "pipe",
    stderr: "pipe"
  })
  if (result.exitCode !== 0) {
    throw new Error(`${argv.join(" ")} failed (${result.exitCode}): ${result.stderr.toString()}`)
  }
  return result.stdout.toString()
}

/** Size of the test disks: big enough for every format's minimum, small enough to be quick. */
export const diskSize = 2 * 1024 * 1024

/** Writes a raw disk with an MBR of one partition, and random bytes in its second MiB. */
export const makeRawDisk = (path: string, seed = 1): string => {
  const disk = new Uint8Array(diskSize)
  disk.set(randomBytes(1024 * 1024, seed), 1024 * 1024)
  // One Linux partition (type 0x83) from sector 2048 to the end, then the boot signature.
  const entry = new DataView(disk.buffer, 446, 16)
  entry.setUint8(4, 0x83)
  entry.setUint32(8, 2048, true)
  entry.setUint32(12, diskSize / 512 - 2048, true)
  disk[510] = 0x55
  disk[511] = 0xaa
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, disk)
  return path
}

/** Converts a raw disk with qemu-img; `format` is qemu-img's name (`vpc` for VHD). */
export const convertDisk = (
  raw: string,
  format: string,
  path: string,
  options: Array<string> = []
) => {
  run(["qemu-img", "convert", "-f", "raw", "-O", format, ...options, raw, path])
  return path
}

/** Makes an ISO 9660 image with genisoimage, optionally with an MBR as hybrid ISOs have. */
export const makeIso = (path: string, hybrid = false): string => {
  const content = join(dirname(path), `iso-content-${Date.now()}`)
  mkdirSync(content, { recursive: true })
  writeFileSync(join(content, "README.TXT"), "installer\n")
  run(["genisoimage", "-quiet", "-V", "TESTISO", "-o", path, content])
  if (hybrid) {
    const bytes = readFileSync(path)
    bytes[510] = 0x55
    bytes[511] = 0xaa
    writeFileSync(path, bytes)
  }
  return path
}

/** Tar entry for `makeTar`: a regular file, a directory or a symbolic link. */
export interface TarEntry {
  readonly name: string
  readonly data?: Uint8Array
  readonly type?: "0" | "2" | "5"
  readonly linkName?: string
}

const octal = (value: number, length: number): string =>
  `${value.toString(8).padStart(length - 1, "0")}\0`

/** Writes a ustar archive by hand, so names tar itself would refuse (`../x`) can be tested. */
export const makeTar = (path: string, entries: ReadonlyArray<TarEntry>): string => {
  const blocks: Array<Uint8Array> = []
  const encoder = new TextEncoder()
  for (const entry of entries) {
    const data = entry.data ?? new Uint8Array()
    const header = new Uint8Array(512)
    const put = (offset: number, text: string) => header.set(encoder.encode(text), offset)
    put(0, entry.name)
    put(100, octal(0o644, 8))
    put(108, octal(0, 8))
    put(116, octal(0, 8))
    put(124, octal(data.length, 12))
    put(136, octal(0, 12))
    put(148, "        ")
    put(156, entry.type ?? "0")
    put(157, entry.linkName ?? "")
    put(257, "ustar\u000000")
    let sum = 0
    for (const byte of header) sum += byte
    put(148, `${sum.toString(8).padStart(6, "0")}\0 `)
    blocks.push(header, data, new Uint8Array((512 - (data.length % 512)) % 512))
  }
  blocks.push(new Uint8Array(1024))
  writeFileSync(path, Buffer.concat(blocks))
  return path
}
