import { Cause, Layer, Logger, References } from "effect"
import { formatLogLine } from "./LogFormat.ts"

const renderMessage = (message: unknown): string => {
  const parts = Array.isArray(message) ? message : [message]
  return parts.map((part) => (typeof part === "string" ? part : JSON.stringify(part))).join(" ")
}

/**
 * Writes one line per entry to stderr: time, level, the VM name when the entry carries a `vm`
 * annotation, and the message. Colour only when stderr is a terminal, so `docker logs` stays
 * plain. Program output (`--show-config`, `guest-exec`) goes to stdout and never through here.
 */
export const stderrLogger = (colour: boolean) =>
  Logger.make((options) => {
    const annotations = options.fiber.getRef(References.CurrentLogAnnotations)
    const vm = typeof annotations.vm === "string" ? annotations.vm : undefined
    let line = formatLogLine(options.logLevel, renderMessage(options.message), {
      date: options.date,
      vm,
      colour
    })
    if (options.cause.reasons.length > 0) line += `\n${Cause.pretty(options.cause)}`
    process.stderr.write(`${line}\n`)
  })

/** The program's logger, with debug lines only when asked for (`LOG_VERBOSE=1`). */
export const loggingLayer = (verbose: boolean) =>
  Layer.mergeAll(
    Logger.layer([stderrLogger(process.stderr.isTTY === true)]),
    Layer.succeed(References.MinimumLogLevel, verbose ? "Debug" : "Info")
  )
