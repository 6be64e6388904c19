import { createHash } from "node:crypto"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { type Subprocess, spawn, spawnSync } from "bun"

export const projectRoot = resolve(import.meta.dir, "../../..")
export const binary = process.env.VM_RUNNER_BINARY ?? join(projectRoot, "dist/vm-runner")

/** The test guest image, built (or found in its cache) by test/guest/ensure-image.sh. */
export const guestImage = (): string => {
  const fromEnv = process.env.VM_RUNNER_TEST_IMAGE
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv
  const result = spawnSync(["bash", join(projectRoot, "test/guest/ensure-image.sh")], {
    stderr: "inherit"
  })
  if (result.exitCode !== 0) throw new Error("test/guest/ensure-image.sh failed")
  const path = result.stdout.toString().trim()
  process.env.VM_RUNNER_TEST_IMAGE = path
  return path
}

export const sha256Of = (path: string): string => {
  const sidecar = `${path}.sha256`
  try {
    return readFileSync(sidecar, "utf8").trim()
  } catch {
    return createHash("sha256").update(readFileSync(path)).digest("hex")
  }
}

/** Returns a TCP port that was free on 127.0.0.1 a moment ago. */
export const freePort = (): Promise<number> =>
  new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() =>
        resolvePort(typeof address === "object" && address !== null ? address.port : 0)
      )
    })
  })

/** A loopback HTTP server that serves one file, with byte ranges, and counts requests. */
export const serveFile = (path: string) => {
  let requests = 0
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (request) => {
      requests += 1
      const file = Bun.file(path)
      const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers.get("range") ?? "")
      const size = file.size
      if (range !== null) {
        const start = Number(range[1])
        const end = range[2] === "" ? size - 1 : Number(range[2])
        return new Response(file.slice(start, end + 1), {
          status: 206,
          headers: { "content-range": `bytes ${start}-${end}/${size}`, "accept-ranges": "bytes" }
        })
      }
      return new Response(file, {
        headers: { "accept-ranges": "bytes", etag: `"${statSync(path).mtimeMs}"` }
      })
    }
  })
  return {
    url: `http://127.0.0.1:${server.port}/${path.split("/").at(-1)}`,
    requests: () => requests,
    stop: () => server.stop(true)
  }
}

/** A temporary directory for one test's data, removed by `cleanup`. */
export const makeWorkDir = (label: string): string => {
  const base = process.env.VM_RUNNER_TEST_TMP ?? join(tmpdir(), "vm-runner-e2e")
  mkdirSync(base, { recursive: true })
  return mkdtempSync(join(base, `${label}-`))
}

/** Writes a catalogue with one entry for the test guest served at `url`. */
export const writeTestCatalogue = (dir: string, url: string, sha256: string): string => {
  const path = join(dir, "distros.yaml")
  writeFileSync(
    path,
    [
      "distributions:",
      "  test-debian-12:",
      "    name: Debian 12 test guest",
      "    arch: x86_64",
      `    url: ${url}`,
      `    sha256: ${sha256}`,
      ""
    ].join("\n")
  )
  return path
}

/** One run of the vm-runner binary, with its stderr collected for assertions. */
export class VmRun {
  readonly process: Subprocess<"ignore", "pipe", "pipe">
  stderr = ""
  stdout = ""
  readonly startedAt = performance.now()
  private readonly done: Promise<number>

  constructor(
    readonly env: Record<string, string>,
    args: ReadonlyArray<string> = []
  ) {
    this.process = spawn([binary, ...args], {
      env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...env },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe"
    })
    const collect = async (stream: ReadableStream<Uint8Array>, key: "stderr" | "stdout") => {
      const decoder = new TextDecoder()
      for await (const chunk of stream) {
        const text = decoder.decode(chunk, { stream: true })
        this[key] += text
        if (process.env.VM_RUNNER_TEST_ECHO === "1") process.stderr.write(text)
      }
    }
    const streams = Promise.all([
      collect(this.process.stderr, "stderr"),
      collect(this.process.stdout, "stdout")
    ])
    this.done = this.process.exited.then(async (code) => {
      await streams
      return code
    })
  }

  /** Waits until stderr matches `pattern`; fails early if the process exits first. */
  async waitForLog(pattern: RegExp, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs
    while (performance.now() < deadline) {
      if (pattern.test(this.stderr)) return
      if (this.process.exitCode !== null) {
        throw new Error(
          `vm-runner exited (${this.process.exitCode}) before ${pattern}:\n${this.stderr}`
        )
      }
      await Bun.sleep(250)
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${pattern}:\n${this.stderr}`)
  }

  /** Sends `signal` and waits for the exit code. */
  async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 180_000): Promise<number> {
    this.process.kill(signal)
    return this.exited(timeoutMs)
  }

  async exited(timeoutMs: number): Promise<number> {
    const timer = setTimeout(() => this.process.kill("SIGKILL"), timeoutMs)
    const code = await this.done
    clearTimeout(timer)
    return code
  }

  seconds(): number {
    return (performance.now() - this.startedAt) / 1000
  }
}

export interface ExecOutcome {
  readonly exitCode: number
  readonly stdout: Buffer
  readonly stderr: string
}

/** Runs `vm-runner guest-exec ARGS` and collects its output. */
export const guestExec = async (
  args: ReadonlyArray<string>,
  options: { readonly stdin?: string | Buffer; readonly env?: Record<string, string> } = {}
): Promise<ExecOutcome> => {
  const child = spawn([binary, "guest-exec", ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...options.env },
    stdin: options.stdin === undefined ? "ignore" : "pipe",
    stdout: "pipe",
    stderr: "pipe"
  })
  if (options.stdin !== undefined && child.stdin !== undefined && typeof child.stdin !== "number") {
    child.stdin.write(options.stdin)
    await child.stdin.end()
  }
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(child.stdout).arrayBuffer(),
    new Response(child.stderr).text(),
    child.exited
  ])
  return { exitCode, stdout: Buffer.from(stdout), stderr }
}

export const removeDir = (dir: string) => rmSync(dir, { recursive: true, force: true })

/** Prints how long a case took, which CI logs keep for spotting slow boots. */
export const reportTime = (label: string, startedAt: number) =>
  process.stderr.write(`[e2e] ${label}: ${((performance.now() - startedAt) / 1000).toFixed(1)} s\n`)

/**
 * Stops a run that is still going with SIGTERM, for afterAll hooks. With `label`, reports how
 * long the stop took.
 */
export const stopIfRunning = async (run: VmRun | undefined, label?: string): Promise<void> => {
  if (run === undefined || run.process.exitCode !== null) return
  const started = performance.now()
  await run.stop("SIGTERM")
  if (label !== undefined) reportTime(`${label}: SIGTERM to exit`, started)
}
