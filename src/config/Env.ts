import { type ByteSize, parseByteSize } from "../domain/ByteSize.ts"

export type EnvMap = Readonly<Record<string, string | undefined>>

/** One invalid variable: what it is set to, what is accepted, and a valid example. */
export interface Problem {
  readonly variable: string
  /** The value as set, or undefined when the variable is unset or holds a secret. */
  readonly value: string | undefined
  /** True for a secret, whose value is kept out of the problem and its message. */
  readonly hidden?: boolean
  readonly expected: string
  readonly example: string | undefined
}

/** Variables whose values are secrets, so problems and logs never show them. */
export const secretVariables: ReadonlySet<string> = new Set([
  "GUEST_PASSWORD",
  "REDFISH_PASSWORD",
  "VNC_PASSWORD"
])

export const formatProblem = (problem: Problem): string => {
  const subject =
    problem.hidden === true
      ? `${problem.variable} (value hidden)`
      : problem.value === undefined
        ? `${problem.variable} is not set`
        : `${problem.variable}=${JSON.stringify(problem.value)}`
  const example = problem.example === undefined ? "" : ` (for example ${problem.example})`
  return `${subject}: ${problem.expected}${example}`
}

/**
 * Rewrites a fractional size such as `1.5G` in the next smaller unit (`1536M`), or returns
 * undefined when that unit does not make it a whole number either.
 */
const wholeSizeFor = (value: string): string | undefined => {
  const match = /^(\d*\.\d+)\s*([MGT])(?:i?B)?$/i.exec(value)
  if (match === null) return undefined
  const units = ["K", "M", "G", "T"]
  const smaller = Number(match[1]) * 1024
  const unit = units[units.indexOf((match[2] ?? "").toUpperCase()) - 1]
  return Number.isInteger(smaller) && smaller > 0 ? `${smaller}${unit}` : undefined
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
    if (secretVariables.has(variable)) {
      this.problems.push({ variable, value: undefined, hidden: true, expected, example })
      return
    }
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
    const list = `${values.slice(0, -1).join(", ")} or ${values.at(-1)}`
    this.problem(name, `expected one of ${list}`, `${name}=${values[0]}`)
    return fallback
  }

  size(name: string, example: string): ByteSize | undefined {
    const value = this.get(name)
    if (value === undefined) return undefined
    const size = parseByteSize(value)
    if (size === undefined) {
      this.problem(
        name,
        "expected a whole number above zero with K, M, G or T (binary units, so 20G, 20GB " +
          "and 20GiB all mean 20 GiB), or a plain number of bytes",
        `${name}=${wholeSizeFor(value) ?? example}`
      )
    }
    return size
  }

  port(name: string, fallback: number): number {
    return this.integer(name, fallback, { min: 1, max: 65535, example: `${name}=${fallback}` })
  }
}
