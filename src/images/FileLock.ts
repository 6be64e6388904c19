import { dlopen, FFIType, read } from "bun:ffi"
import { closeSync, mkdirSync, openSync } from "node:fs"
import { dirname } from "node:path"
import { Context, Data, Duration, Effect, Layer, Schedule, type Scope, Semaphore } from "effect"
import { ExitCode } from "../domain/ExitCode.ts"

/** flock(2) operations, from <sys/file.h>; the values are the same on every Linux libc. */
const LOCK_EX = 2
const LOCK_NB = 4
const LOCK_UN = 8
/** errno for "held by someone else" under LOCK_NB (EWOULDBLOCK equals EAGAIN on Linux). */
const EWOULDBLOCK = 11
const EINTR = 4

/** How often a waiting process retries the lock; short, because the holder may finish anytime. */
const lockPollInterval = Duration.millis(250)

export class FileLockError extends Data.TaggedError("FileLockError")<{
  readonly path: string
  readonly detail: string
}> {
  readonly exitCode = ExitCode.Image
  override get message(): string {
    return `cannot lock ${this.path}: ${this.detail}`
  }
}

interface Libc {
  readonly flock: (fd: number, operation: number) => number
  readonly errno: () => number
}

/** glibc's name first, then musl's (Alpine-based images), whose file name carries the arch. */
const libcNames = ["libc.so.6", `libc.musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`]

const loadLibc = (): Libc | undefined => {
  for (const name of libcNames) {
    try {
      const library = dlopen(name, {
        flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
        __errno_location: { args: [], returns: FFIType.ptr }
      })
      const { flock, __errno_location } = library.symbols
      return {
        flock: (fd, operation) => flock(fd, operation),
        errno: () => {
          const pointer = __errno_location()
          return pointer === null ? 0 : read.i32(pointer, 0)
        }
      }
    } catch {}
  }
  return undefined
}

/**
 * Exclusive locks on files in the data directory, so processes that share it (containers on one
 * volume) never download or convert the same image at once. flock(2) locks belong to the open
 * file, so the kernel releases them when the holder exits or is killed.
 */
export class FileLock extends Context.Service<
  FileLock,
  {
    /**
     * Runs `effect` while holding an exclusive lock on `path`, waiting as long as another process
     * or fiber holds it. `purpose` names what is locked in the message shown while waiting.
     */
    withLock<A, E, R>(
      path: string,
      purpose: string,
      effect: Effect.Effect<A, E, R>
    ): Effect.Effect<A, E | FileLockError, R>
    /**
     * Takes the lock on `path` for the rest of the scope without waiting. Returns false when
     * another process holds it.
     */
    tryHold(path: string): Effect.Effect<boolean, FileLockError, Scope.Scope>
  }
>()("vm-runner/images/FileLock") {
  static readonly layer = Layer.effect(
    FileLock,
    Effect.gen(function* () {
      const libc = loadLibc()
      if (libc === undefined) {
        yield* Effect.logWarning(
          `cannot load the C library (tried ${libcNames.join(", ")}) to lock image files; ` +
            "two processes sharing this data directory may download the same image at once"
        )
        return FileLock.of(inProcessLocks())
      }
      return FileLock.of(flockLocks(libc))
    })
  )
}

const tryLock = (libc: Libc, fd: number, path: string) =>
  Effect.suspend(() => {
    if (libc.flock(fd, LOCK_EX | LOCK_NB) === 0) return Effect.succeed(true)
    const errno = libc.errno()
    if (errno === EWOULDBLOCK || errno === EINTR) return Effect.succeed(false)
    return Effect.fail(new FileLockError({ path, detail: `flock failed with errno ${errno}` }))
  })

const openLockFile = (path: string) =>
  Effect.try({
    try: () => {
      mkdirSync(dirname(path), { recursive: true })
      return openSync(path, "a")
    },
    catch: (cause) => new FileLockError({ path, detail: String(cause) })
  })

const flockLocks = (libc: Libc): FileLock["Service"] => ({
  tryHold: (path) =>
    Effect.acquireRelease(
      openLockFile(path).pipe(
        Effect.flatMap((fd) =>
          tryLock(libc, fd, path).pipe(
            Effect.map((held) => ({ fd, held })),
            Effect.tapError(() => Effect.sync(() => closeSync(fd)))
          )
        )
      ),
      ({ fd, held }) =>
        Effect.sync(() => {
          if (held) libc.flock(fd, LOCK_UN)
          closeSync(fd)
        })
    ).pipe(Effect.map(({ held }) => held)),
  withLock: (path, purpose, effect) =>
    Effect.acquireUseRelease(
      openLockFile(path),
      (fd) =>
        Effect.gen(function* () {
          if (!(yield* tryLock(libc, fd, path))) {
            yield* Effect.logInfo(`waiting for another vm-runner process to finish ${purpose}`)
            yield* tryLock(libc, fd, path).pipe(
              Effect.repeat({ schedule: Schedule.spaced(lockPollInterval), until: (held) => held })
            )
          }
          return yield* effect
        }),
      (fd) =>
        Effect.sync(() => {
          libc.flock(fd, LOCK_UN)
          closeSync(fd)
        })
    )
})

/** Fallback without a C library: serialises fibers of this process only. */
const inProcessLocks = (): FileLock["Service"] => {
  const semaphores = new Map<string, Semaphore.Semaphore>()
  return {
    // Without flock(2) another process cannot be seen, so the lock always looks free.
    tryHold: () => Effect.succeed(true),
    withLock: (path, _purpose, effect) =>
      Effect.suspend(() => {
        let semaphore = semaphores.get(path)
        if (semaphore === undefined) {
          semaphore = Semaphore.makeUnsafe(1)
          semaphores.set(path, semaphore)
        }
        return semaphore.withPermits(1)(effect)
      })
  }
}
