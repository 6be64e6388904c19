/**
 * Start-up time of the compiled binary for the quick commands: median and range of wall time
 * over N runs (default 10) after two warm-up runs, with a binary that only prints as the floor.
 *
 *   bun run build && bun bench/startup.ts [runs]
 *
 * Prints a Markdown table. The goal for `--show-config` is a median under 25 ms. Times come
 * from hyperfine (Debian package `hyperfine`) when it is installed, which starts each run
 * without a shell; otherwise from Bun.spawnSync, which adds a few milliseconds of its own.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { machineLine, median, spread, timeCommand } from "./support.ts"

const hyperfine = Bun.which("hyperfine")

/** Wall times in milliseconds of `runs` runs of argv, after warm-up runs. */
const measure = (argv: ReadonlyArray<string>, runs: number, dir: string): Array<number> => {
  if (hyperfine === null) return timeCommand(argv, runs)
  const report = join(dir, "hyperfine.json")
  const command = argv.map((arg) => `'${arg}'`).join(" ")
  const result = Bun.spawnSync([
    hyperfine,
    "-N",
    "--warmup",
    "3",
    "--runs",
    String(runs),
    "--export-json",
    report,
    command
  ])
  if (result.exitCode !== 0) throw new Error(`hyperfine failed: ${result.stderr.toString()}`)
  const parsed = JSON.parse(readFileSync(report, "utf8")) as {
    results: Array<{ times: Array<number>; exit_codes: Array<number> }>
  }
  const [entry] = parsed.results
  if (entry === undefined || entry.exit_codes.some((code) => code !== 0)) {
    throw new Error(`${command} exited with an error`)
  }
  return entry.times.map((seconds) => seconds * 1000)
}

const runs = Number(process.argv[2] ?? 10)
const binary = resolve(import.meta.dir, "../dist/vm-runner")

const dir = mkdtempSync(join(tmpdir(), "vm-runner-bench-"))
const floor = join(dir, "hello")
await Bun.write(join(dir, "hello.ts"), 'console.log("hello")\n')
Bun.spawnSync([
  "bun",
  "build",
  join(dir, "hello.ts"),
  "--compile",
  "--bytecode",
  "--outfile",
  floor
])

const cases: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
  ["compiled Bun binary printing one line (floor)", [floor]],
  ["vm-runner --show-config", [binary, "--show-config"]],
  ["vm-runner --show-config --json", [binary, "--show-config", "--json"]],
  ["vm-runner --list-distros", [binary, "--list-distros"]],
  ["vm-runner guest-exec --help", [binary, "guest-exec", "--help"]],
  ["vm-runner --version (command tree)", [binary, "--version"]]
]

console.log(
  `Machine: ${machineLine()}; timer: ${hyperfine === null ? "Bun.spawnSync" : "hyperfine -N"}\n`
)
console.log(`| Command | median ms | range ms (${runs} runs) |`)
console.log("|---|---:|---:|")
for (const [label, argv] of cases) {
  const times = measure(argv, runs, dir)
  console.log(`| ${label} | ${median(times).toFixed(1)} | ${spread(times)} |`)
}
rmSync(dir, { recursive: true, force: true })
