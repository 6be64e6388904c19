import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

/**
 * An HTTP server on 127.0.0.1 for download tests, with ranges, validators and scripted faults.
 *
 * NOTE: it is built on node:http (run by Bun) rather than Bun.serve, because Bun.serve sends
 * every streamed body with chunked encoding and so cannot announce a Content-Length while
 * throttling or cutting a body, which the resume and length tests need.
 */
export interface ServedFile {
  data: Uint8Array
  etag?: string | undefined
  lastModified?: string | undefined
  /** Whether Range requests are honoured; without it every response is a full 200. */
  ranges: boolean
  /** Bytes per 10 ms tick; undefined sends as fast as the socket takes them. */
  throttle?: number | undefined
  /** Statuses sent for the next requests, one per request, before serving normally. */
  failures: Array<number>
  /** Closes the connection after this many body bytes, for the next request only. */
  cutAfter?: number | undefined
  /** Stops sending (connection left open) after this many body bytes, for the next request. */
  stallAfter?: number | undefined
  /** Extra response headers. */
  headers?: Record<string, string>
}

export interface RequestRecord {
  readonly path: string
  readonly headers: Record<string, string | Array<string> | undefined>
  status: number
  bodyBytes: number
}

const tickMillis = 10
const chunkLimit = 64 * 1024

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

export class TestServer {
  readonly files = new Map<string, ServedFile>()
  readonly requests: Array<RequestRecord> = []
  private server: Server | undefined
  private stalled = new Set<ServerResponse>()
  port = 0

  static async start(): Promise<TestServer> {
    const instance = new TestServer()
    await instance.listen(0)
    return instance
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`
  }

  serve(path: string, data: Uint8Array, options: Partial<ServedFile> = {}): ServedFile {
    const file: ServedFile = { data, ranges: true, failures: [], ...options }
    this.files.set(path, file)
    return file
  }

  /** Body bytes sent for `path` across all requests. */
  bytesSent(path: string): number {
    return this.requests
      .filter((request) => request.path === path)
      .reduce((sum, request) => sum + request.bodyBytes, 0)
  }

  /** Requests for `path` whose response had a body (200 or 206). */
  bodyRequests(path: string): number {
    return this.requests.filter(
      (request) => request.path === path && (request.status === 200 || request.status === 206)
    ).length
  }

  async listen(port: number): Promise<void> {
    const server = createServer((request, response) => {
      this.handle(request, response).catch(() => response.destroy())
    })
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve))
    this.server = server
    this.port = (server.address() as AddressInfo).port
  }

  /** Stops listening, so new connections are refused, as when the network is down. */
  async stop(): Promise<void> {
    for (const response of this.stalled) response.destroy()
    this.stalled.clear()
    const server = this.server
    this.server = undefined
    if (server === undefined) return
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? "/", "http://localhost").pathname
    const record: RequestRecord = { path, headers: { ...request.headers }, status: 0, bodyBytes: 0 }
    this.requests.push(record)
    const file = this.files.get(path)
    const answer = (status: number, headers: Record<string, string> = {}) => {
      record.status = status
      response.writeHead(status, headers)
      response.end()
    }
    if (file === undefined) return answer(404)
    const failure = file.failures.shift()
    if (failure !== undefined) return answer(failure)

    const validators: Record<string, string> = { ...file.headers }
    if (file.etag !== undefined) validators.etag = file.etag
    if (file.lastModified !== undefined) validators["last-modified"] = file.lastModified
    const ifNoneMatch = request.headers["if-none-match"]
    if (file.etag !== undefined && ifNoneMatch === file.etag) return answer(304, validators)

    const size = file.data.length
    let start = 0
    let status = 200
    const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? "")
    const ifRange = request.headers["if-range"]
    const rangeApplies =
      file.ranges &&
      range !== null &&
      (ifRange === undefined || ifRange === file.etag || ifRange === file.lastModified)
    if (rangeApplies) {
      start = Number(range![1])
      if (start >= size) return answer(416, { "content-range": `bytes */${size}` })
      status = 206
      validators["content-range"] = `bytes ${start}-${size - 1}/${size}`
    }
    if (file.ranges) validators["accept-ranges"] = "bytes"
    record.status = status
    response.writeHead(status, { ...validators, "content-length": String(size - start) })
    await this.sendBody(file, start, response, record)
  }

  private async sendBody(
    file: ServedFile,
    start: number,
    response: ServerResponse,
    record: RequestRecord
  ): Promise<void> {
    const cutAfter = file.cutAfter
    const stallAfter = file.stallAfter
    file.cutAfter = undefined
    file.stallAfter = undefined
    let offset = start
    while (offset < file.data.length) {
      if (cutAfter !== undefined && record.bodyBytes >= cutAfter) {
        response.destroy()
        return
      }
      if (stallAfter !== undefined && record.bodyBytes >= stallAfter) {
        this.stalled.add(response)
        return
      }
      let length = Math.min(file.throttle ?? chunkLimit, file.data.length - offset)
      const limit = cutAfter ?? stallAfter
      if (limit !== undefined) length = Math.min(length, limit - record.bodyBytes)
      const chunk = file.data.subarray(offset, offset + length)
      offset += length
      record.bodyBytes += length
      if (!response.write(chunk)) {
        await new Promise((resolve) => response.once("drain", resolve))
      }
      if (file.throttle !== undefined) await sleep(tickMillis)
      if (response.destroyed) return
    }
    response.end()
  }
}

/** Deterministic bytes that compress poorly, so sizes on the wire equal sizes on disk. */
export const randomBytes = (length: number, seed = 1): Uint8Array => {
  const data = new Uint8Array(length)
  let state = seed >>> 0 || 1
  for (let index = 0; index < length; index++) {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    data[index] = state & 0xff
  }
  return data
}

export const sha256Hex = (data: Uint8Array): string =>
  new Bun.CryptoHasher("sha256").update(data).digest("hex")

export const sha512Hex = (data: Uint8Array): string =>
  new Bun.CryptoHasher("sha512").update(data).digest("hex")
