import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { release } from "node:os"
import { join } from "node:path"
import { filesystemName, supportsDirectIo } from "../../../src/storage/DirectIo.ts"

/** /dev/shm is a tmpfs and /var/tmp lies on the root filesystem, ext4 on the test machines. */
let tmpfsDir: string
let ext4Dir: string

beforeAll(() => {
  tmpfsDir = mkdtempSync(join("/dev/shm", "vm-runner-directio-"))
  ext4Dir = mkdtempSync(join("/var/tmp", "vm-runner-directio-"))
})

afterAll(() => {
  rmSync(tmpfsDir, { recursive: true, force: true })
  rmSync(ext4Dir, { recursive: true, force: true })
})

/** tmpfs accepts O_DIRECT from Linux 6.6 on (commit "tmpfs: trivial support for direct IO"). */
const tmpfsHasDirectIo = (() => {
  const [major = 0, minor = 0] = release().split(".").map(Number)
  return major > 6 || (major === 6 && minor >= 6)
})()

/** Whether QEMU can write a qcow2 image in `dir` with cache=none, which opens it O_DIRECT. */
const qemuWritesUncached = (dir: string): boolean => {
  const image = join(dir, "cache-none.qcow2")
  try {
    const created = Bun.spawnSync(["qemu-img", "create", "-q", "-f", "qcow2", image, "1M"])
    if (created.exitCode !== 0) throw new Error(created.stderr.toString())
    return Bun.spawnSync(["qemu-io", "-t", "none", "-c", "write 0 4k", image]).exitCode === 0
  } finally {
    rmSync(image, { force: true })
  }
}

/** Whether this process may create a user and mount namespace, as the ramfs test needs. */
const canUnshare =
  Bun.which("unshare") !== null &&
  Bun.spawnSync(["unshare", "--user", "--map-root-user", "--mount", "true"]).exitCode === 0

/** Runs the probe in a private mount namespace on a fresh ramfs, which has no O_DIRECT. */
const probeOnRamfs = (): { directIo: boolean; filesystem: string } => {
  const mountPoint = mkdtempSync(join("/var/tmp", "vm-runner-ramfs-"))
  try {
    const script = join(import.meta.dir, "direct-io-probe.ts")
    const result = Bun.spawnSync([
      "unshare",
      "--user",
      "--map-root-user",
      "--mount",
      "sh",
      "-c",
      'mount -t ramfs ramfs "$1" && exec "$2" "$3" "$1"',
      "sh",
      mountPoint,
      process.execPath,
      script
    ])
    if (result.exitCode !== 0) throw new Error(`probe failed: ${result.stderr.toString()}`)
    return JSON.parse(result.stdout.toString())
  } finally {
    rmSync(mountPoint, { recursive: true, force: true })
  }
}

describe("supportsDirectIo", () => {
  test("tmpfs follows the kernel version", () => {
    expect(supportsDirectIo(tmpfsDir)).toBe(tmpfsHasDirectIo)
  })

  test("ext4 accepts O_DIRECT", () => {
    expect(supportsDirectIo(ext4Dir)).toBe(true)
  })

  test("tmpfs agrees with QEMU cache=none", () => {
    expect(supportsDirectIo(tmpfsDir)).toBe(qemuWritesUncached(tmpfsDir))
  })

  test("ext4 agrees with QEMU cache=none", () => {
    expect(supportsDirectIo(ext4Dir)).toBe(qemuWritesUncached(ext4Dir))
  })

  test.skipIf(!canUnshare)("ramfs rejects O_DIRECT", () => {
    const probe = probeOnRamfs()
    expect(probe.directIo).toBe(false)
    expect(probe.filesystem).toBe("ramfs")
  })

  test("missing directory counts as unsupported", () => {
    expect(supportsDirectIo(join(ext4Dir, "missing"))).toBe(false)
  })

  test("probe file is removed on both filesystems", () => {
    supportsDirectIo(tmpfsDir)
    supportsDirectIo(ext4Dir)
    expect(readdirSync(tmpfsDir)).toEqual([])
    expect(readdirSync(ext4Dir)).toEqual([])
  })
})

describe("filesystemName", () => {
  test("tmpfs by name", () => {
    expect(filesystemName(tmpfsDir)).toBe("tmpfs")
  })

  test("ext4 by name", () => {
    expect(filesystemName(ext4Dir)).toBe("ext4")
  })

  test("procfs by its magic number", () => {
    expect(filesystemName("/proc")).toBe("type 0x9fa0")
  })

  test("missing path is unknown", () => {
    expect(filesystemName(join(ext4Dir, "missing"))).toBe("unknown")
  })
})
