/** Log line format shared by the Effect logger and the fast paths that run without Effect. */

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

/** `17:01:02 WARN  [vm] message`, with the level coloured when `colour` is set. */
export const formatLogLine = (
  level: string,
  message: string,
  options: { readonly date: Date; readonly vm: string | undefined; readonly colour: boolean }
): string => {
  const label = levelLabels[level] ?? level
  const time = options.date.toISOString().slice(11, 19)
  const shown = options.colour ? `${levelColours[level] ?? ""}${label}\x1b[0m` : label
  const vm = options.vm === undefined ? "" : `[${options.vm}] `
  return `${time} ${shown} ${vm}${message}`
}
