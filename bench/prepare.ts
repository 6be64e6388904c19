/**
 * Launcher overhead with the base image already cached: wall time from process start to the
 * "domain defined" and "domain started" log lines, for a 2 GiB and a 20 GiB base image. The
 * goal is under 1 s for both, independent of the image size, since the work disk is a qcow2
 * overlay and nothing is copied.
 *
 *   bun run build && bun bench/prepare.ts [runs]
 *
 * Each run boots the test guest (from test/guest/ensure-image.sh) under a fresh name and stops
 * it at once with two SIGTERMs, which skip the graceful shutdown. Needs root and libvirtd.
 */

import { mkdtempSync, rmSync } from "node:fs"
import { join, resolve } from "node:path"
import { spawn, spawnSync } from "bun"
import { machineLine, median, spread } from "./support.ts"

const runs = Number(process.argv[2] ?? 5)
const root = resolve(import.meta.dir, "..")
const binary = join(root, "dist/vm-runner")
const image = spawnSync(["bash", join(root, "test/guest/ensure-image.sh")])
  .stdout.toString()
  .trim()
const work = mkdtempSync("/var/tmp/vm-runner-bench-prepare-")

/** Makes a base image of `size` with the test guest's content, as a cached image would be. */
const makeBase = (size: string): string => {
  const path = join(work, `base-${size}.qcow2`)
  spawnSync(["qemu-img", "convert", "-O", "qcow2", image, path])
  spawnSync(["qemu-img", "resize", "-q", path, size])
  return path
}

/**
 * Reads the child's stderr to the end, so vm-runner never writes into a closed pipe, and
 * resolves `matched` with the seconds at which each pattern first appeared.
 */
const watchStderr = (
  child: ReturnType<typeof spawn>,
  started: number,
  patterns: ReadonlyArray<RegExp>
) => {
  let resolveMatched: (found: Array<number>) => void = () => undefined
  const matched = new Promise<Array<number>>((resolve) => {
    resolveMatched = resolve
  })
  const found: Array<number> = []
  const finished = (async () => {
    let text = ""
    const decoder = new TextDecoder()
    for await (const chunk of child.stderr as ReadableStream<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true })
      while (found.length < patterns.length && patterns[found.length]?.test(text)) {
        found.push((performance.now() - started) / 1000)
      }
      if (found.length === patterns.length) resolveMatched(found)
    }
    resolveMatched(found)
  })()
  return { matched, finished }
}

const measure = async (base: string, label: string) => {
  const defined: Array<number> = []
  const startedTimes: Array<number> = []
  for (let i = 0; i < runs; i++) {
    const name = `bench-prepare-${process.pid}-${i}`
    const started = performance.now()
    const child = spawn([binary], {
      env: {
        ...process.env,
        BOOT_FROM: base,
        DATA_DIR: join(work, "data"),
        GUEST_NAME: name,
        PERSIST: "0",
        CLOUD_INIT: "0",
        NO_CONSOLE: "1",
        MEMORY: "1024",
        SSH_PORT: String(40000 + i)
      },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe"
    })
    const watch = watchStderr(child, started, [/domain defined/, /domain started/])
    const [definedAt, startedAt] = await watch.matched
    child.kill("SIGTERM")
    await Bun.sleep(200)
    child.kill("SIGTERM")
    await Promise.all([child.exited, watch.finished])
    if (definedAt === undefined || startedAt === undefined) throw new Error(`run ${name} failed`)
    defined.push(definedAt * 1000)
    startedTimes.push(startedAt * 1000)
  }
  console.log(
    `| ${label} | ${median(defined).toFixed(0)} | ${spread(defined)} | ` +
      `${median(startedTimes).toFixed(0)} | ${spread(startedTimes)} |`
  )
}

console.log(`Machine: ${machineLine()}\n`)
console.log(
  `| Base image | to defined, median ms | range | to started, median ms | range (${runs} runs) |`
)
console.log("|---|---:|---:|---:|---:|")
try {
  await measure(makeBase("2G"), "2 GiB qcow2")
  await measure(makeBase("20G"), "20 GiB qcow2")
} finally {
  rmSync(work, { recursive: true, force: true })
}
