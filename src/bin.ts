import { basename } from "node:path"

/**
 * Entry point. It loads only what the command needs: guest-exec and the fast read-only queries
 * start without the command tree, which is imported for everything else.
 */
const main = async (): Promise<number> => {
  const invokedAs = basename(process.argv0)
  const args = process.argv.slice(2)
  if (invokedAs === "guest-exec" || args[0] === "guest-exec") {
    const { guestExecMain } = await import("./cli/GuestExecMain.ts")
    return guestExecMain(invokedAs === "guest-exec" ? args : args.slice(1))
  }
  const { runFastCommand } = await import("./cli/FastCommands.ts")
  const fast = runFastCommand(args)
  if (fast !== undefined) return fast
  const { runCli } = await import("./cli/Main.ts")
  return runCli(args)
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`vm-runner: internal error (a bug; please report it): ${String(error)}\n`)
    process.exit(70)
  }
)
