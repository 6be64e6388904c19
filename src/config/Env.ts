import { type ByteSize, parseByteSize } from "../domain/ByteSize.ts"

export type EnvMap = Readonly<Record<string, string | undefined>>

/** One invalid variable: what it is set to, what is accepted, and a valid example. */
export interface Problem {
  readonly variable: string
  readonly value: string | undefined
  readonly expected: string
  readonly example: string | undefined
}

export const formatProblem = (problem: Problem): string => {
  const subject =
    problem.value === undefined
      ? `${problem.variable} is not set`
      : `${problem.variable}=${JSON.stringify(problem.value)}`
  const example = problem.example === undefined ? "" : ` (for example ${problem.example})`
  return `${subject}: ${problem.expected}${example}`
}

const truthy = new Set(["1", "true", "yes", "on"])
const falsy = new Set(["0", "false", "no", "off"])

export interface IntegerRule {
  readonly min: number
  readonly max: number
  readonly example: string
  /** Words after the number in messages, such as "MiB" or "seconds". */
  readonly unit?: string
}

/**
 * Reads environment variables and collects every problem instead of stopping at the first, so a
 * user sees all mistakes at once. Values are trimmed, and an empty value counts as unset.
 */
export class EnvReader {
  readonly problems: Array<Problem> = []
  /** Informational lines about derived values, logged at start. */
  readonly notes: Array<string> = []
  readonly warnings: Array<string> = []

  constructor(readonly env: EnvMap) {}

  get(name: string): string | undefined {
    const value = this.env[name]?.trim()
    return value === undefined || value === "" ? undefined : value
  }

  isSet(name: string): boolean {
    return this.get(name) !== undefined
  }

  /** The untrimmed value, for secrets and keys where spaces may matter. */
  raw(name: string): string | undefined {
    const value = this.env[name]
    return value === undefined || value === "" ? undefined : value
  }

  problem(variable: string, expected: string, example?: string): void {
    this.problems.push({ variable, value: this.env[variable], expected, example })
  }

  string(name: string, fallback: string): string {
    return this.get(name) ?? fallback
  }

  bool(name: string, fallback: boolean): boolean {
    const value = this.get(name)
    if (value === undefined) return fallback
    const lower = value.toLowerCase()
    if (truthy.has(lower)) return true
    if (falsy.has(lower)) return false
    this.problem(name, "expected 1, 0, true, false, yes, no, on or off", `${name}=1`)
    return fallback
  }

  integer(name: string, fallback: number, rule: IntegerRule): number {
    const value = this.get(name)
    if (value === undefined) return fallback
    const unit = rule.unit === undefined ? "" : ` ${rule.unit}`
    const expected = `expected a whole number from ${rule.min} to ${rule.max}${unit}`
    if (!/^\d+$/.test(value)) {
      this.problem(name, expected, rule.example)
      return fallback
    }
    const number = Number(value)
    if (number < rule.min || number > rule.max) {
      this.problem(name, expected, rule.example)
      return fallback
    }
    return number
  }

  choice<const T extends string>(name: string, fallback: T, values: ReadonlyArray<T>): T {
    const value = this.get(name)
    if (value === undefined) return fallback
    const lower = value.toLowerCase()
    const match = values.find((candidate) => candidate === lower)
    if (match !== undefined) return match
    this.problem(name, `expected one of ${values.join(", ")}`, `${name}=${values[0]}`)
    return fallback
  }

  size(name: string, example: string): ByteSize | undefined {
    const value = this.get(name)
    if (value === undefined) return undefined
    const size = parseByteSize(value)
    if (size === undefined) {
      this.problem(
        name,
        "expected a size above zero: a number with K, M, G or T (binary units, so 20G, 20GB " +
          "and 20GiB all mean 20 GiB) or a plain number of bytes",
        `${name}=${example}`
      )
    }
    return size
  }

  port(name: string, fallback: number): number {
    return this.integer(name, fallback, { min: 1, max: 65535, example: `${name}=${fallback}` })
  }
}
