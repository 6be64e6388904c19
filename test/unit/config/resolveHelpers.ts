import { Result } from "effect"
import { builtInCatalogue as loadBuiltInCatalogue } from "../../../src/catalogue/Catalogue.ts"
import { type EnvMap, formatProblem, type Problem } from "../../../src/config/Env.ts"
import { type ConfigError, type Resolved, resolveConfig } from "../../../src/config/Resolve.ts"
import type { HostFacts } from "../../../src/host/HostFacts.ts"
import { type FakeHostOptions, fakeHost } from "./fakeHost.ts"

export const builtInCatalogue = Result.getOrThrow(loadBuiltInCatalogue())

/** A host is either fake facts to override or a whole `HostFacts`, such as the live one. */
export type HostInput = Partial<FakeHostOptions> | HostFacts

const hostFrom = (host: HostInput | undefined): HostFacts =>
  typeof host?.usableCpus === "function"
    ? (host as HostFacts)
    : fakeHost(host as Partial<FakeHostOptions>)

export const resolve = (env: EnvMap, host?: HostInput): Result.Result<Resolved, ConfigError> =>
  resolveConfig({
    env,
    host: hostFrom(host),
    catalogue: builtInCatalogue,
    catalogueSource: "the built-in catalogue"
  })

/** Resolves `env` and fails the test with the problem list if the configuration is invalid. */
export const resolveValid = (env: EnvMap, host?: HostInput): Resolved => {
  const result = resolve(env, host)
  if (Result.isFailure(result)) throw new Error(result.failure.message)
  return result.success
}

/** Resolves `env` and returns its problems, or an empty list when it is valid. */
export const problemsOf = (env: EnvMap, host?: HostInput): ReadonlyArray<Problem> => {
  const result = resolve(env, host)
  return Result.isFailure(result) ? result.failure.problems : []
}

/** An expected problem: the variable it names and a phrase its message contains. */
export type ExpectedProblem = readonly [variable: string, phrase: string]

/**
 * Pairs each expected problem with one actual problem of the same variable whose message
 * contains the phrase. Returns what is left over on each side, so a test can assert both empty.
 */
export const matchProblems = (
  actual: ReadonlyArray<Problem>,
  expected: ReadonlyArray<ExpectedProblem>
): { unexpected: Array<string>; missing: Array<string> } => {
  const left = actual.map((problem) => ({ problem, text: formatProblem(problem) }))
  const missing: Array<string> = []
  for (const [variable, phrase] of expected) {
    const position = left.findIndex(
      (entry) => entry.problem.variable === variable && entry.text.includes(phrase)
    )
    if (position === -1) missing.push(`${variable}: ...${phrase}...`)
    else left.splice(position, 1)
  }
  return { unexpected: left.map((entry) => entry.text), missing }
}
