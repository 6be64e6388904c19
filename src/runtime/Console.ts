import { Effect } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"

/**
 * Attaches the terminal to the guest's serial console with `virsh console` until the user
 * detaches with Ctrl+]. The child stays in the terminal's process group (detached: false) so
 * it owns the terminal and handles raw mode itself.
 */
export const attachConsole = (domain: string, uri: string) =>
  Effect.gen(function* () {
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    yield* Effect.logInfo("attaching the serial console (Ctrl+] detaches and shuts the guest down)")
    const handle = yield* spawner.spawn(
      ChildProcess.make("virsh", ["-c", uri, "console", domain, "--force"], {
        stdin: "inherit",
        stdout: "inherit",
        stderr: "inherit",
        detached: false
      })
    )
    yield* handle.exitCode
  }).pipe(Effect.scoped, Effect.ignore)
