import { dlopen, FFIType } from "bun:ffi"
import { closeSync, mkdirSync, openSync } from "node:fs"
import { dirname } from "node:path"

/** flock(2) operations from <sys/file.h>. */
const LOCK_EX = 2
const LOCK_NB = 4
const LOCK_UN = 8

let libc: { symbols: { flock: (fd: number, operation: number) => number } } | undefined

const flock = (fd: number, operation: number): number => {
  libc ??= dlopen("libc.so.6", {
    flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 }
  })
  return libc.symbols.flock(fd, operation)
}

export interface HeldLock {
  release(): void
}

/**
 * Takes an exclusive flock(2) on `path`, creating it. The kernel drops the lock when the
 * process exits, so a killed run never leaves a stale lock behind. Returns undefined when
 * `wait` is false and another process holds the lock.
 */
export const lockFile = (
  path: string,
  options: { readonly wait: boolean }
): HeldLock | undefined => {
  mkdirSync(dirname(path), { recursive: true })
  const fd = openSync(path, "a")
  if (flock(fd, options.wait ? LOCK_EX : LOCK_EX | LOCK_NB) !== 0) {
    closeSync(fd)
    return undefined
  }
  return {
    release: () => {
      flock(fd, LOCK_UN)
      closeSync(fd)
    }
  }
}
