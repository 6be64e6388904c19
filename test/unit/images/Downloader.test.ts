import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test"
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit, Fiber, Layer } from "effect"
import {
  type DownloadError,
  Downloader,
  type DownloadRequest,
  type DownloadResult,
  partialPathOf
} from "../../../src/images/Downloader.ts"
import { Progress } from "../../../src/images/Progress.ts"
import { randomBytes, sha256Hex, sha512Hex, TestServer } from "./TestServer.ts"

const testLayer = (freeBytes?: (directory: string) => number | undefined) =>
  Downloader.layerWith({
    stallTimeout: "300 millis",
    retryBaseDelay: "10 millis",
    retryMaxDelay: "40 millis",
    ...(freeBytes === undefined ? {} : { freeBytes })
  }).pipe(Layer.provide(Progress.layerSilent))

const download = (request: DownloadRequest, layer = testLayer()) =>
  Effect.runPromise(
    Downloader.use((downloader) => downloader.download(request)).pipe(Effect.provide(layer))
  )

const downloadExit = (request: DownloadRequest, layer = testLayer()) =>
  Effect.runPromiseExit(
    Downloader.use((downloader) => downloader.download(request)).pipe(Effect.provide(layer))
  )

const failureOf = (exit: Exit.Exit<DownloadResult, DownloadError>): DownloadError => {
  if (Exit.isSuccess(exit)) throw new Error("expected the download to fail")
  const error = exit.cause.reasons.find((reason) => reason._tag === "Fail")
  if (error === undefined || error._tag !== "Fail") throw new Error(`no typed failure: ${exit}`)
  return error.error
}

const sizeOf = (path: string): number => (existsSync(path) ? statSync(path).size : 0)

/** Asserts that the download completed and narrows the result to that case. */
const downloaded = (result: DownloadResult) => {
  expect(result._tag).toBe("Downloaded")
  if (result._tag !== "Downloaded") throw new Error("expected a completed download")
  return result
}

const waitFor = async (condition: () => boolean, timeoutMillis = 5000) => {
  const deadline = Date.now() + timeoutMillis
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time")
    await Bun.sleep(5)
  }
}

let server: TestServer
let directory: string

beforeAll(async () => {
  server = await TestServer.start()
})

afterAll(async () => {
  await server.stop()
})

afterEach(() => {
  server.requests.length = 0
  server.files.clear()
  if (directory !== undefined) rmSync(directory, { recursive: true, force: true })
})

const freshDirectory = () => {
  directory = mkdtempSync(join(tmpdir(), "vm-runner-download-"))
  return directory
}

const request = (path: string, extra: Partial<DownloadRequest> = {}): DownloadRequest => ({
  url: server.url(path),
  destination: join(freshDirectory(), "image.qcow2"),
  label: "base image",
  attempts: 3,
  ...extra
})

describe("Downloader.download", () => {
  test("verifies a sha256 digest", async () => {
    const data = randomBytes(256 * 1024)
    server.serve("/a.img", data, { etag: '"v1"' })
    const result = await download(
      request("/a.img", { expectedDigest: { algorithm: "sha256", hex: sha256Hex(data) } })
    )
    expect(result._tag).toBe("Downloaded")
    if (result._tag !== "Downloaded") return
    expect(result.digestChecked).toBe(true)
    expect(result.sha256).toBe(sha256Hex(data))
    expect(result.validators.etag).toBe('"v1"')
    expect(readFileSync(result.path)).toEqual(Buffer.from(data))
    expect(existsSync(partialPathOf(result.path))).toBe(false)
  })

  test("verifies a sha512 digest", async () => {
    const data = randomBytes(64 * 1024, 7)
    server.serve("/b.img", data)
    const result = await download(
      request("/b.img", { expectedDigest: { algorithm: "sha512", hex: sha512Hex(data) } })
    )
    expect(downloaded(result).digestChecked).toBe(true)
  })

  test("resumes a throttled download cut half way", async () => {
    const size = 2 * 1024 * 1024
    const data = randomBytes(size, 3)
    server.serve("/cut.img", data, {
      etag: '"cut"',
      throttle: 64 * 1024,
      cutAfter: size / 2
    })
    const result = await download(request("/cut.img"))
    expect(result._tag).toBe("Downloaded")
    if (result._tag !== "Downloaded") return
    expect(result.resumedFrom).toBeGreaterThan(0)
    expect(result.sha256).toBe(sha256Hex(data))
    const fetchedTwice = server.bytesSent("/cut.img") - size
    expect(fetchedTwice).toBeLessThan(size * 0.1)
    expect(server.requests[1]?.headers.range).toBe(`bytes=${result.resumedFrom}-`)
    expect(server.requests[1]?.headers["if-range"]).toBe('"cut"')
  })

  test("resumes after the process stopped mid-download", async () => {
    const size = 2 * 1024 * 1024
    const data = randomBytes(size, 4)
    server.serve("/restart.img", data, { lastModified: "Tue, 01 Jul 2025 10:00:00 GMT" })
    server.files.get("/restart.img")!.throttle = 32 * 1024
    const first = request("/restart.img")
    const fiber = Effect.runFork(
      Downloader.use((downloader) => downloader.download(first)).pipe(Effect.provide(testLayer()))
    )
    await waitFor(() => sizeOf(partialPathOf(first.destination)) >= size / 2)
    await Effect.runPromise(Fiber.interrupt(fiber))
    server.files.get("/restart.img")!.throttle = undefined

    const result = await download(first)
    expect(downloaded(result).resumedFrom).toBeGreaterThanOrEqual(size / 2)
    expect(readFileSync(first.destination)).toEqual(Buffer.from(data))
    expect(server.bytesSent("/restart.img") - size).toBeLessThan(size * 0.1)
    expect(server.requests.at(-1)?.headers["if-range"]).toBe("Tue, 01 Jul 2025 10:00:00 GMT")
  })

  test("resumes after SIGTERM", async () => {
    const size = 2 * 1024 * 1024
    const data = randomBytes(size, 15)
    const file = server.serve("/term.img", data, { etag: '"term"', throttle: 32 * 1024 })
    const target = request("/term.img")
    const child = Bun.spawn(
      ["bun", join(import.meta.dir, "download-child.ts"), target.url, target.destination],
      { stdout: "ignore", stderr: "ignore" }
    )
    await waitFor(() => sizeOf(partialPathOf(target.destination)) >= size / 2, 20_000)
    child.kill("SIGTERM")
    expect(await child.exited).toBe(130)
    const kept = sizeOf(partialPathOf(target.destination))
    expect(kept).toBeGreaterThanOrEqual(size / 2)

    file.throttle = undefined
    const result = await download(target)
    expect(downloaded(result).resumedFrom).toBe(kept)
    expect(readFileSync(target.destination)).toEqual(Buffer.from(data))
    expect(server.bytesSent("/term.img") - size).toBeLessThan(size * 0.1)
  })

  test("restarts cleanly when the server ignores ranges", async () => {
    const size = 512 * 1024
    const data = randomBytes(size, 5)
    server.serve("/norange.img", data, { etag: '"n"', ranges: false, cutAfter: size / 2 })
    const result = await download(request("/norange.img"))
    expect(downloaded(result).resumedFrom).toBe(0)
    expect(downloaded(result).sha256).toBe(sha256Hex(data))
    expect(server.requests.map((entry) => entry.status)).toEqual([200, 200])
  })

  test("restarts cleanly when the file changed upstream", async () => {
    const size = 512 * 1024
    const old = randomBytes(size, 6)
    const file = server.serve("/changed.img", old, { etag: '"old"', cutAfter: size / 2 })
    const first = request("/changed.img", { attempts: 1 })
    const exit = await downloadExit(first)
    expect(failureOf(exit)._tag).toBe("DownloadFailed")
    // The client may lose the last chunk before the cut, so the partial file is at most half.
    const partial = sizeOf(partialPathOf(first.destination))
    expect(partial).toBeGreaterThan(0)
    expect(partial).toBeLessThanOrEqual(size / 2)

    const fresh = randomBytes(size + 1000, 9)
    file.data = fresh
    file.etag = '"new"'
    const result = await download(first)
    expect(downloaded(result).sha256).toBe(sha256Hex(fresh))
    expect(downloaded(result).validators.etag).toBe('"new"')
    expect(server.requests.at(-1)?.status).toBe(200)
  })

  test("deletes the file on a checksum mismatch", async () => {
    const data = randomBytes(100 * 1024, 8)
    server.serve("/bad.img", data)
    const wrong = "0".repeat(64)
    const target = request("/bad.img", { expectedDigest: { algorithm: "sha256", hex: wrong } })
    const error = failureOf(await downloadExit(target))
    expect(error._tag).toBe("ChecksumMismatch")
    expect(error.message).toContain(`expected ${wrong}`)
    expect(error.message).toContain(`got ${sha256Hex(data)}`)
    expect(existsSync(target.destination)).toBe(false)
    expect(existsSync(partialPathOf(target.destination))).toBe(false)
    expect(server.requests.length).toBe(1)
  })

  test("fails at once on HTTP 404", async () => {
    const target = request("/missing.img", { attempts: 5 })
    const error = failureOf(await downloadExit(target))
    expect(error._tag).toBe("HttpStatusError")
    expect(error.message).toContain("404")
    expect(error.message).toContain(target.url)
    expect(server.requests.length).toBe(1)
  })

  test("retries 503, 429 and 408", async () => {
    const data = randomBytes(10 * 1024, 10)
    server.serve("/flaky.img", data, { failures: [503, 429, 408] })
    const result = await download(request("/flaky.img", { attempts: 4 }))
    expect(result._tag).toBe("Downloaded")
    expect(server.requests.map((entry) => entry.status)).toEqual([503, 429, 408, 200])
  })

  test("gives up after DOWNLOAD_RETRIES attempts", async () => {
    server.serve("/down.img", randomBytes(1024), { failures: [500, 500, 500, 500] })
    const error = failureOf(await downloadExit(request("/down.img", { attempts: 3 })))
    expect(error._tag).toBe("DownloadFailed")
    expect(error.message).toContain("after 3 attempts")
    expect(error.message).toContain("HTTP 500")
    expect(server.requests.length).toBe(3)
  })

  test("treats a stall as a failed attempt", async () => {
    const size = 256 * 1024
    const data = randomBytes(size, 11)
    server.serve("/stall.img", data, { etag: '"s"', stallAfter: size / 2 })
    const started = Date.now()
    const result = await download(request("/stall.img"))
    expect(downloaded(result).resumedFrom).toBe(size / 2)
    expect(Date.now() - started).toBeGreaterThanOrEqual(300)
  })

  test("rejects a body shorter than Content-Length", async () => {
    const size = 64 * 1024
    const file = server.serve("/short.img", randomBytes(size, 12), { ranges: false })
    file.cutAfter = size / 2
    const exit = await downloadExit(request("/short.img", { attempts: 1 }))
    const error = failureOf(exit)
    expect(error._tag).toBe("DownloadFailed")
  })

  test("answers NotModified for a matching ETag", async () => {
    server.serve("/same.img", randomBytes(1024), { etag: '"same"' })
    const result = await download(request("/same.img", { cached: { etag: '"same"' } }))
    expect(result._tag).toBe("NotModified")
    expect(server.requests[0]?.headers["if-none-match"]).toBe('"same"')
  })

  test("checks free space before writing", async () => {
    server.serve("/big.img", randomBytes(64 * 1024))
    const target = request("/big.img")
    const error = failureOf(
      await downloadExit(
        target,
        testLayer(() => 1024)
      )
    )
    expect(error._tag).toBe("NotEnoughSpace")
    expect(error.message).toContain("not enough free space")
    expect(sizeOf(partialPathOf(target.destination))).toBe(0)
  })

  test("fails fast when offline and a cached copy exists", async () => {
    const offline = await TestServer.start()
    const url = offline.url("/gone.img")
    await offline.stop()
    const started = Date.now()
    const exit = await downloadExit({
      ...request("/unused"),
      url,
      attempts: 5,
      failFastBeforeResponse: true
    })
    expect(failureOf(exit)._tag).toBe("DownloadFailed")
    expect(Date.now() - started).toBeLessThan(1000)
  })

  test("resumes a partial file left by a killed run", async () => {
    const size = 300 * 1024
    const data = randomBytes(size, 13)
    server.serve("/left.img", data, { etag: '"left"' })
    const target = request("/left.img")
    writeFileSync(partialPathOf(target.destination), data.subarray(0, 100 * 1024))
    writeFileSync(
      `${target.destination}.part.json`,
      JSON.stringify({ url: target.url, etag: '"left"', total: size })
    )
    const result = await download(target)
    expect(downloaded(result).resumedFrom).toBe(100 * 1024)
    expect(server.bytesSent("/left.img")).toBe(size - 100 * 1024)
  })

  test("verifies a complete partial file without a body", async () => {
    const data = randomBytes(50 * 1024, 14)
    server.serve("/whole.img", data, { etag: '"w"' })
    const target = request("/whole.img")
    writeFileSync(partialPathOf(target.destination), data)
    writeFileSync(
      `${target.destination}.part.json`,
      JSON.stringify({ url: target.url, etag: '"w"', total: data.length })
    )
    const result = await download(target)
    expect(downloaded(result).sha256).toBe(sha256Hex(data))
    expect(server.requests.map((entry) => entry.status)).toEqual([416])
  })
})

describe("Downloader.fetchText", () => {
  test("returns the body", async () => {
    server.serve("/SHA256SUMS", new TextEncoder().encode("abc  file\n"))
    const text = await Effect.runPromise(
      Downloader.use((downloader) => downloader.fetchText(server.url("/SHA256SUMS"), 2)).pipe(
        Effect.provide(testLayer())
      )
    )
    expect(text).toBe("abc  file\n")
  })
})
