/** Helpers shared by the benchmark scripts: timing statistics and a description of the machine. */
import { cpus, loadavg, totalmem } from "node:os"
import { spawnSync } from "bun"

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

export const spread = (values: ReadonlyArray<number>): string =>
  `${Math.min(...values).toFixed(1)}-${Math.max(...values).toFixed(1)}`

/** One line naming the CPU, core count, memory, kernel and load, for the results page. */
export const machineLine = (): string => {
  const kernel = spawnSync(["uname", "-r"]).stdout.toString().trim()
  const model = cpus()[0]?.model ?? "unknown CPU"
  const load = loadavg()
    .map((value) => value.toFixed(2))
    .join(" ")
  return (
    `${model}, ${cpus().length} vCPUs, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${kernel}, ` +
    `Bun ${Bun.version}, load average ${load}`
  )
}

/** Runs argv `runs` times after `warmup` runs and returns each wall time in milliseconds. */
export const timeCommand = (
  argv: ReadonlyArray<string>,
  runs: number,
  options: { readonly env?: Record<string, string>; readonly warmup?: number } = {}
): Array<number> => {
  const env = { ...process.env, ...options.env }
  for (let i = 0; i < (options.warmup ?? 2); i++) spawnSync([...argv], { env })
  const times: Array<number> = []
  for (let i = 0; i < runs; i++) {
    const started = performance.now()
    const result = spawnSync([...argv], { env })
    times.push(performance.now() - started)
    if (result.exitCode !== 0) {
      throw new Error(`${argv.join(" ")} failed: ${result.stderr.toString()}`)
    }
  }
  return times
}
