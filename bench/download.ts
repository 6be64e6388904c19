/**
 * Download throughput on loopback: curl against the Downloader service and two alternatives for
 * streaming a response to disk, all fetching the same file from one server process.
 *
 *   bun bench/download.ts [size in MiB, default 512] [runs, default 5]
 *
 * The server is a separate Bun process serving the file with Bun.serve, so it does not compete
 * with the client under test for one event loop. Each client writes to a file in the same
 * directory, and every one but curl computes a sha256 on the way, as the Downloader must. Along
 * with the wall-clock rate, each client's own CPU time is reported, which varies far less than
 * the rate on a machine that other work shares. Prints one Markdown table.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs"
import { cpus, loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer, Stream } from "effect"
import { FetchHttpClient, HttpClient } from "effect/http"
import { Downloader } from "../src/images/Downloader.ts"
import { Progress } from "../src/images/Progress.ts"

interface Client {
  readonly name: string
  /** Downloads `url` to `target` and returns the CPU time it used, in microseconds. */
  readonly run: (url: string, target: string) => Promise<number>
}

/** Measures the CPU time of a client that runs in this process. */
const inProcess = async (run: () => Promise<unknown>): Promise<number> => {
  const before = process.cpuUsage()
  await run()
  const used = process.cpuUsage(before)
  return used.user + used.system
}

const curl: Client = {
  name: "curl -o",
  run: async (url, target) => {
    const child = Bun.spawn(["curl", "-sS", "-o", target, url], { stderr: "inherit" })
    if ((await child.exited) !== 0) throw new Error("curl failed")
    const usage = child.resourceUsage()
    return Number(usage?.cpuTime.user ?? 0) + Number(usage?.cpuTime.system ?? 0)
  }
}

const downloaderLayer = Downloader.layer.pipe(Layer.provide(Progress.layerSilent))

const downloaderService: Client = {
  name: "Downloader service (fetch, FileSink, sha256)",
  run: (url, target) =>
    inProcess(() =>
      Effect.runPromise(
        Downloader.use((downloader) =>
          downloader.download({ url, destination: target, label: "bench", attempts: 1 })
        ).pipe(Effect.provide(downloaderLayer))
      )
    )
}

const streamWithEffect = (url: string, target: string) =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.get(url)
    const writer = Bun.file(target).writer({ highWaterMark: 1024 * 1024 })
    const hasher = new Bun.CryptoHasher("sha256")
    yield* response.stream.pipe(
      Stream.runForEach((chunk) =>
        Effect.sync(() => {
          writer.write(chunk)
          hasher.update(chunk)
        })
      )
    )
    yield* Effect.promise(async () => writer.end())
    hasher.digest("hex")
  }).pipe(Effect.provide(FetchHttpClient.layer))

const effectHttpClient: Client = {
  name: "effect/http FetchHttpClient stream, FileSink, sha256",
  run: (url, target) => inProcess(() => Effect.runPromise(streamWithEffect(url, target)))
}

const fetchWithWriteSync = async (url: string, target: string) => {
  const response = await fetch(url, { decompress: false })
  const fd = openSync(target, "w")
  const hasher = new Bun.CryptoHasher("sha256")
  try {
    for await (const chunk of response.body!) {
      writeSync(fd, chunk)
      hasher.update(chunk)
    }
  } finally {
    closeSync(fd)
  }
  hasher.digest("hex")
}

const fetchWriteSync: Client = {
  name: "fetch, writeSync per chunk, sha256",
  run: (url, target) => inProcess(() => fetchWithWriteSync(url, target))
}

const clients = [curl, downloaderService, effectHttpClient, fetchWriteSync]

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** Writes `sizeMiB` of random bytes, so nothing along the way can compress them. */
const writeRandomFile = (path: string, sizeMiB: number) => {
  const chunk = new Uint8Array(1024 * 1024)
  const fd = openSync(path, "w")
  for (let index = 0; index < sizeMiB; index++) {
    // getRandomValues fills at most 64 KiB per call.
    for (let offset = 0; offset < chunk.length; offset += 65536) {
      crypto.getRandomValues(chunk.subarray(offset, offset + 65536))
    }
    writeSync(fd, chunk)
  }
  closeSync(fd)
}

interface Sample {
  readonly seconds: number
  readonly cpuMicros: number
}

const table = (sizeMiB: number, runs: number, samples: Map<string, Array<Sample>>) => {
  const curlSeconds = median(samples.get(curl.name)!.map((sample) => sample.seconds))
  const [load1] = loadavg()
  const lines = [
    `${sizeMiB} MiB over loopback, ${runs} runs each, ${cpus().length} CPUs, ` +
      `load average ${load1?.toFixed(2)} at the end`,
    "",
    "| Client | MiB/s (median) | MiB/s (min-max) | median vs curl | CPU s per GiB (median) |",
    "|---|---:|---:|---:|---:|"
  ]
  for (const client of clients) {
    const runsOf = samples.get(client.name)!
    const rates = runsOf.map((sample) => sizeMiB / sample.seconds)
    const seconds = median(runsOf.map((sample) => sample.seconds))
    const spread = `${Math.min(...rates).toFixed(0)}-${Math.max(...rates).toFixed(0)}`
    const ratio = `${((curlSeconds / seconds) * 100).toFixed(0)}%`
    const cpuPerGiB = median(runsOf.map((sample) => sample.cpuMicros)) / 1e6 / (sizeMiB / 1024)
    lines.push(
      `| ${client.name} | ${(sizeMiB / seconds).toFixed(0)} | ${spread} | ${ratio} | ` +
        `${cpuPerGiB.toFixed(2)} |`
    )
  }
  return lines.join("\n")
}

async function main() {
  const sizeMiB = Number(process.argv[2] ?? 512)
  const runs = Number(process.argv[3] ?? 5)
  const directory = mkdtempSync(join(tmpdir(), "vm-runner-bench-"))
  const source = join(directory, "source.bin")
  writeRandomFile(source, sizeMiB)

  const server = Bun.spawn(["bun", import.meta.path, "--serve", source], { stdout: "pipe" })
  const samples = new Map<string, Array<Sample>>(clients.map((client) => [client.name, []]))
  try {
    const reader = server.stdout.getReader()
    const port = Number(new TextDecoder().decode((await reader.read()).value).trim())
    const url = `http://127.0.0.1:${port}/source.bin`
    // One warm-up each, then the clients take turns so drift in the machine hits all alike.
    for (let round = 0; round <= runs; round++) {
      for (const client of clients) {
        const target = join(directory, "target.bin")
        const started = performance.now()
        const cpuMicros = await client.run(url, target)
        const seconds = (performance.now() - started) / 1000
        rmSync(target, { force: true })
        if (round > 0) samples.get(client.name)!.push({ seconds, cpuMicros })
      }
    }
  } finally {
    server.kill()
    rmSync(directory, { recursive: true, force: true })
  }
  console.log(table(sizeMiB, runs, samples))
}

if (process.argv[2] === "--serve") {
  const file = Bun.file(process.argv[3]!)
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(file) })
  console.log(server.port)
} else {
  await main()
}
