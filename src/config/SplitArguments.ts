/**
 * Splits a command line into words the way a POSIX shell does for quoting only: single quotes
 * keep text literally, double quotes keep spaces and allow \" and \\, a backslash outside
 * quotes escapes the next character. Nothing is expanded.
 */
export const splitArguments = (
  line: string
): { readonly args: ReadonlyArray<string> } | { readonly error: string } => {
  const args: Array<string> = []
  let current = ""
  let inWord = false
  let quote: "'" | '"' | undefined
  for (let i = 0; i < line.length; i++) {
    const char = line[i] as string
    if (quote === "'") {
      if (char === "'") quote = undefined
      else current += char
    } else if (quote === '"') {
      if (char === '"') quote = undefined
      else if (char === "\\" && (line[i + 1] === '"' || line[i + 1] === "\\")) current += line[++i]
      else current += char
    } else if (char === "'" || char === '"') {
      quote = char
      inWord = true
    } else if (char === "\\" && i + 1 < line.length) {
      current += line[++i]
      inWord = true
    } else if (/\s/.test(char)) {
      if (inWord) args.push(current)
      current = ""
      inWord = false
    } else {
      current += char
      inWord = true
    }
  }
  if (quote !== undefined) return { error: `unterminated ${quote} quote` }
  if (inWord) args.push(current)
  return { args }
}
