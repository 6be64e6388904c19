import { closeSync, constants, openSync, rmSync, statfsSync } from "node:fs"
import { join } from "node:path"

/** Filesystem names for the statfs(2) magic numbers (linux/magic.h) that matter for disk I/O. */
const filesystemNames = new Map<number, string>([
  [0x01021994, "tmpfs"],
  [0x858458f6, "ramfs"],
  [0xf15f, "ecryptfs"],
  [0x794c7630, "overlayfs"],
  [0x65735546, "fuse"],
  [0x9123683e, "btrfs"],
  [0xef53, "ext4"],
  [0x58465342, "xfs"],
  [0x2fc12fc1, "zfs"],
  [0x6969, "nfs"]
])

export const filesystemName = (dir: string): string => {
  try {
    const type = statfsSync(dir).type
    return filesystemNames.get(type) ?? `type 0x${type.toString(16)}`
  } catch {
    return "unknown"
  }
}

/**
 * Tells whether files in `dir` can be opened with O_DIRECT, which QEMU needs for cache=none
 * and cache=directsync. ramfs, tmpfs before Linux 6.6, ecryptfs and some overlay and FUSE
 * filesystems refuse it with EINVAL, and QEMU would then fail to start the guest.
 */
export const supportsDirectIo = (dir: string): boolean => {
  const probe = join(dir, `.direct-io-probe-${process.pid}`)
  try {
    closeSync(openSync(probe, constants.O_CREAT | constants.O_RDWR | constants.O_DIRECT, 0o600))
    return true
  } catch {
    return false
  } finally {
    rmSync(probe, { force: true })
  }
}
