import { closeSync, constants, openSync, rmSync, statfsSync } from "node:fs"
import { join } from "node:path"

/** Filesystem names for the statfs(2) magic numbers that matter for disk I/O settings. */
const filesystemNames: Record<number, string> = {
  16914836: "tmpfs",
  61791: "ecryptfs",
  2035054128: "overlayfs",
  1702057286: "fuse",
  2435016766: "btrfs",
  61267: "ext4",
  1481003842: "xfs",
  801189825: "zfs",
  26985: "nfs"
}

export const filesystemName = (dir: string): string => {
  try {
    const type = statfsSync(dir).type
    return filesystemNames[type] ?? `type 0x${type.toString(16)}`
  } catch {
    return "unknown"
  }
}

/**
 * Tells whether files in `dir` can be opened with O_DIRECT, which QEMU needs for cache=none
 * and cache=directsync. tmpfs, ecryptfs and some overlay and FUSE filesystems refuse it with
 * EINVAL, and QEMU would then fail to start the guest.
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
