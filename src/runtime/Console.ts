import { Effect, Fiber } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { Libvirt } from "../libvirt/Libvirt.ts"
import { agentCommand, waitForAgent } from "./Readiness.ts"

/**
 * Tells the guest's serial terminal the size of ours, so full-screen programs in the console
 * use the whole window: a serial line carries no size, unlike an SSH session.
 */
const sendTerminalSize = (domain: string) =>
  Effect.suspend(() => {
    const { rows, columns } = process.stdout
    if (rows === undefined || columns === undefined) return Effect.void
    return agentCommand(domain, "guest-exec", {
      path: "/bin/sh",
      arg: ["-c", `stty -F /dev/ttyS0 rows ${rows} cols ${columns} 2>/dev/null || true`]
    }).pipe(Effect.ignore)
  })

/**
 * Attaches the terminal to the guest's serial console with `virsh console` until the user
 * detaches with Ctrl+]. The child stays in the terminal's process group (detached: false) so
 * it owns the terminal and handles raw mode itself.
 */
export const attachConsole = (domain: string, uri: string) =>
  Effect.gen(function* () {
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const libvirt = yield* Libvirt
    yield* Effect.logInfo("attaching the serial console (Ctrl+] detaches and shuts the guest down)")
    const sizing = yield* Effect.forkScoped(
      waitForAgent(domain, "10 minutes").pipe(
        Effect.flatMap((up) => (up ? sendTerminalSize(domain) : Effect.void)),
        Effect.provideService(Libvirt, libvirt)
      )
    )
    const onResize = () =>
      Effect.runFork(sendTerminalSize(domain).pipe(Effect.provideService(Libvirt, libvirt)))
    process.stdout.on("resize", onResize)
    const handle = yield* spawner.spawn(
      ChildProcess.make("virsh", ["-c", uri, "console", domain, "--force"], {
        stdin: "inherit",
        stdout: "inherit",
        stderr: "inherit",
        detached: false
      })
    )
    yield* handle.exitCode
    process.stdout.off("resize", onResize)
    yield* Fiber.interrupt(sizing)
  }).pipe(Effect.scoped, Effect.ignore)
