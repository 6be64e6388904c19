/**
 * Start-up time of the compiled binary for the quick commands: median and range of wall time
 * over N runs (default 10) after two warm-up runs, with a binary that only prints as the floor.
 *
 *   bun run build && bun bench/startup.ts [runs]
 *
 * Prints a Markdown table. The goal for `--show-config` is a median under 25 ms.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { machineLine, median, spread, timeCommand } from "./support.ts"

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

console.log(`Machine: ${machineLine()}\n`)
console.log(`| Command | median ms | range ms (${runs} runs) |`)
console.log("|---|---:|---:|")
for (const [label, argv] of cases) {
  const times = timeCommand(argv, runs)
  console.log(`| ${label} | ${median(times).toFixed(1)} | ${spread(times)} |`)
}
rmSync(dir, { recursive: true, force: true })
