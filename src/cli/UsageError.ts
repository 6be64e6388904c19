import { Data } from "effect"
import { ExitCode } from "../domain/ExitCode.ts"

/** A command line that cannot be run as given. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {
  readonly exitCode = ExitCode.Usage
}
