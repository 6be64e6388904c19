import { Cause, Layer, Logger, References } from "effect"

const levelLabels: Record<string, string> = {
  Trace: "TRACE",
  Debug: "DEBUG",
  Info: "INFO ",
  Warn: "WARN ",
  Error: "ERROR",
  Fatal: "FATAL"
}

const levelColours: Record<string, string> = {
  Debug: "\x1b[90m",
  Info: "\x1b[34m",
  Warn: "\x1b[33m",
  Error: "\x1b[31m",
  Fatal: "\x1b[31m"
}

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
    const vm = typeof annotations.vm === "string" ? `[${annotations.vm}] ` : ""
    const label = levelLabels[options.logLevel] ?? options.logLevel
    const time = options.date.toISOString().slice(11, 19)
    const level = colour ? `${levelColours[options.logLevel] ?? ""}${label}\x1b[0m` : label
    let line = `${time} ${level} ${vm}${renderMessage(options.message)}`
    if (options.cause.reasons.length > 0) line += `\n${Cause.pretty(options.cause)}`
    process.stderr.write(`${line}\n`)
  })

/** The program's logger, with debug lines only when asked for (`LOG_VERBOSE=1`). */
export const loggingLayer = (verbose: boolean) =>
  Layer.mergeAll(
    Logger.layer([stderrLogger(process.stderr.isTTY === true)]),
    Layer.succeed(References.MinimumLogLevel, verbose ? "Debug" : "Info")
  )
