/**
 * Child process for the FileLock test: takes the lock named by argv[2], prints "locked", keeps
 * it for argv[3] milliseconds, then exits.
 */
import { Effect } from "effect"
import { FileLock } from "../../../src/images/FileLock.ts"

const [path, holdMillis] = process.argv.slice(2)
const program = FileLock.use((locks) =>
  locks.withLock(
    path!,
    "the test",
    Effect.sync(() => console.log("locked")).pipe(Effect.andThen(Effect.sleep(Number(holdMillis))))
  )
)
await Effect.runPromise(program.pipe(Effect.provide(FileLock.layer)))
