import { existsSync, rmSync } from "node:fs"
import { connect } from "node:net"
import { Data, Effect, Schedule, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { ExitCode } from "../domain/ExitCode.ts"
import { Libvirt } from "../libvirt/Libvirt.ts"

export class LibvirtUnavailable extends Data.TaggedError("LibvirtUnavailable")<{
  readonly uri: string
  readonly detail: string
}> {
  readonly exitCode = ExitCode.Environment
  override get message(): string {
    return `libvirt is not reachable at ${this.uri}: ${this.detail}`
  }
}

/** Sockets a crashed container can leave behind; libvirtd refuses to start while they exist. */
const socketDirs = ["/run/libvirt", "/var/run/libvirt"]
const socketNames = [
  "libvirt-sock",
  "libvirt-sock-ro",
  "libvirt-admin-sock",
  "virtlogd-sock",
  "virtlogd-admin-sock"
]

/**
 * How long to wait for a freshly started libvirtd to respond: it needs about a second on the
 * test machine, and up to several when it probes QEMU capabilities for the first time.
 */
const daemonStartSchedule = Schedule.spaced("200 millis").pipe(Schedule.upTo({ times: 150 }))

type SocketState = "listening" | "refused" | "missing"

/** Connects to a unix socket to learn whether a daemon listens on it. */
const socketState = (path: string): Promise<SocketState> =>
  new Promise((resolve) => {
    const socket = connect(path)
    const finish = (state: SocketState) => {
      socket.destroy()
      resolve(state)
    }
    socket.setTimeout(2000, () => finish("listening"))
    socket.once("connect", () => finish("listening"))
    socket.once("error", (error: NodeJS.ErrnoException) =>
      finish(
        error.code === "ENOENT"
          ? "missing"
          : error.code === "ECONNREFUSED"
            ? "refused"
            : "listening"
      )
    )
  })

/** Streams a daemon's output into the debug log, so its pipe never fills and blocks it. */
const drain = (name: string, stream: Stream.Stream<Uint8Array, unknown>) =>
  stream.pipe(
    Stream.decodeText(),
    Stream.splitLines,
    Stream.runForEach((line) => Effect.logDebug(`${name}: ${line}`)),
    Effect.ignore
  )

/**
 * Makes sure libvirtd responds at `uri`. When nothing responds at the local system URI and the
 * daemons are installed (the container case), starts virtlogd and libvirtd as children of
 * this process, for the lifetime of the scope.
 */
export const ensureLibvirt = Effect.fn("Daemons.ensureLibvirt")(function* (uri: string) {
  const libvirt = yield* Libvirt
  if (yield* libvirt.ping()) {
    yield* Effect.logDebug(`libvirtd answers at ${uri}`)
    return
  }
  const local = uri === "qemu:///system" && existsSync("/usr/sbin/libvirtd")
  if (!local || process.getuid?.() !== 0) {
    return yield* new LibvirtUnavailable({
      uri,
      detail:
        "no daemon answers; start libvirtd (for example 'systemctl start libvirtd' or " +
        "'virtlogd -d; libvirtd -d' as root) or set LIBVIRT_URI"
    })
  }

  const states = new Map<string, SocketState>()
  for (const dir of socketDirs) {
    for (const name of socketNames) {
      const path = `${dir}/${name}`
      const state = yield* Effect.promise(() => socketState(path))
      states.set(name, state === "listening" ? "listening" : (states.get(name) ?? state))
      // Only a socket without a listener is stale, so a busy daemon's socket is never removed.
      if (state === "refused") {
        yield* Effect.logInfo(`removing stale socket ${path}`)
        rmSync(path, { force: true })
      }
    }
  }
  if (states.get("libvirt-sock") === "listening") {
    return yield* new LibvirtUnavailable({
      uri,
      detail: "a libvirtd listens on its socket but did not answer within 30 s; check its log"
    })
  }

  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const start = (name: string, argv: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      const [command, ...args] = argv
      const handle = yield* spawner
        .spawn(ChildProcess.make(command ?? name, args, { stdin: "ignore", detached: true }))
        .pipe(
          Effect.mapError(
            (cause) =>
              new LibvirtUnavailable({ uri, detail: `cannot start ${name}: ${cause.message}` })
          )
        )
      yield* Effect.forkScoped(drain(name, handle.stdout))
      yield* Effect.forkScoped(drain(name, handle.stderr))
      yield* Effect.logInfo(`started ${name} (pid ${handle.pid})`)
      return handle
    })

  if (states.get("virtlogd-sock") !== "listening") yield* start("virtlogd", ["/usr/sbin/virtlogd"])
  const libvirtd = yield* start("libvirtd", ["/usr/sbin/libvirtd"])
  yield* libvirt.ping().pipe(
    Effect.flatMap((up) => (up ? Effect.void : Effect.fail("not yet" as const))),
    Effect.retry(daemonStartSchedule),
    Effect.catch(() =>
      Effect.gen(function* () {
        const running = yield* libvirtd.isRunning.pipe(Effect.orElseSucceed(() => false))
        return yield* new LibvirtUnavailable({
          uri,
          detail: running
            ? "libvirtd started but does not answer within 30 s (run with LOG_VERBOSE=1 to see its log)"
            : "libvirtd exited at start (run with LOG_VERBOSE=1 to see its log; in a container, " +
              "check --device /dev/kvm, --cgroupns=host or --privileged)"
        })
      })
    )
  )
  yield* Effect.logInfo(`libvirtd is ready at ${uri}`)
})
