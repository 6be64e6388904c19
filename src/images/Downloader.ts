import { closeSync, ftruncateSync, openSync, renameSync, statSync } from "node:fs"
import { dirname } from "node:path"
import { Context, Data, Duration, Effect, Layer, Option, Schedule, Schema } from "effect"
import { ExitCode } from "../domain/ExitCode.ts"
import type { Digest, DigestAlgorithm } from "./Checksums.ts"
import {
  ensureSpace,
  fileOperation,
  formatSize,
  freeBytes,
  ImageFileError,
  type NotEnoughSpace,
  removeQuietly,
  writeFileAtomic
} from "./Files.ts"
import { Progress, type ProgressTracker } from "./Progress.ts"

/** The server's validators for one version of a resource (RFC 9110, section 8.8). */
export interface Validators {
  readonly etag?: string | undefined
  readonly lastModified?: string | undefined
}

export interface DownloadRequest {
  readonly url: string
  /** Path of the verified file, which is downloaded to `<destination>.part` first. */
  readonly destination: string
  /** Name of the download in logs and the progress bar: "base image", "boot source". */
  readonly label: string
  /** Total attempts, as `DOWNLOAD_RETRIES` counts them; at least 1. */
  readonly attempts: number
  readonly expectedDigest?: Digest | undefined
  /** Validators of a cached copy: the request becomes conditional and may end NotModified. */
  readonly cached?: Validators | undefined
  /** Free space needed besides the file itself, such as room to unpack it. */
  readonly extraSpace?: ((contentLength: number) => number) | undefined
  /**
   * Fails on the first error that comes before any response body, without retrying, because
   * the caller has a cached copy to use instead (the network is down).
   */
  readonly failFastBeforeResponse?: boolean | undefined
}

export type DownloadResult =
  | { readonly _tag: "NotModified" }
  | {
      readonly _tag: "Downloaded"
      readonly path: string
      readonly size: number
      /** Hex sha256 of the whole file, computed during the transfer. */
      readonly sha256: string
      /** True when `expectedDigest` was given and matched. */
      readonly digestChecked: boolean
      readonly validators: Validators
      /** The URL after redirects. */
      readonly finalUrl: string
      /** Bytes already on disk from an earlier attempt or run when this one started. */
      readonly resumedFrom: number
    }

export class HttpStatusError extends Data.TaggedError("HttpStatusError")<{
  readonly url: string
  readonly status: number
  readonly statusText: string
}> {
  readonly exitCode = ExitCode.Image
  override get message(): string {
    const hint =
      this.status === 404 || this.status === 410
        ? "; check the URL, or whether the distribution moved the image"
        : this.status === 401 || this.status === 403
          ? "; the server refuses access to it"
          : ""
    return `HTTP ${this.status} ${this.statusText} for ${this.url}${hint}`.trimEnd()
  }
}

export class NetworkError extends Data.TaggedError("NetworkError")<{
  readonly url: string
  readonly detail: string
}> {
  readonly exitCode = ExitCode.Image
  override get message(): string {
    return `cannot download ${this.url}: ${this.detail}`
  }
}

export class StallTimeout extends Data.TaggedError("StallTimeout")<{
  readonly url: string
  readonly timeout: Duration.Duration
  readonly received: number
}> {
  readonly exitCode = ExitCode.Image
  override get message(): string {
    return (
      `download of ${this.url} stalled: no data for ${Duration.format(this.timeout)} ` +
      `after ${formatSize(this.received)} in this attempt`
    )
  }
}

export class LengthMismatch extends Data.TaggedError("LengthMismatch")<{
  readonly url: string
  readonly expected: number
  readonly actual: number
}> {
  readonly exitCode = ExitCode.Image
  override get message(): string {
    return (
      `download of ${this.url} is ${this.actual} bytes long, ` +
      `but the server announced ${this.expected}`
    )
  }
}

export class ChecksumMismatch extends Data.TaggedError("ChecksumMismatch")<{
  readonly url: string
  readonly algorithm: DigestAlgorithm
  readonly expected: string
  readonly actual: string
}> {
  readonly exitCode = ExitCode.Image
  override get message(): string {
    return (
      `${this.algorithm} checksum mismatch for ${this.url}: expected ${this.expected}, ` +
      `got ${this.actual}. The download was deleted; the mirror may be corrupt or mid-update`
    )
  }
}

/** Every attempt failed with a transient error; `cause` is the last one. */
export class DownloadFailed extends Data.TaggedError("DownloadFailed")<{
  readonly url: string
  readonly attempts: number
  readonly cause: TransientError
}> {
  readonly exitCode = ExitCode.Image
  override get message(): string {
    const times = this.attempts === 1 ? "1 attempt" : `${this.attempts} attempts`
    return (
      `download failed after ${times}: ${this.cause.message}. ` +
      "Raise DOWNLOAD_RETRIES to try longer"
    )
  }
}

export type TransientError = HttpStatusError | NetworkError | StallTimeout | LengthMismatch
export type DownloadError =
  | TransientError
  | DownloadFailed
  | ChecksumMismatch
  | NotEnoughSpace
  | ImageFileError

/** 408 (request timeout), 429 (too many requests) and 5xx may pass on a retry; other 4xx never. */
export const isRetryableStatus = (status: number): boolean =>
  status === 408 || status === 429 || status >= 500

const isTransient = (error: DownloadError): error is TransientError =>
  error._tag === "HttpStatusError"
    ? isRetryableStatus(error.status)
    : error._tag === "NetworkError" ||
      error._tag === "StallTimeout" ||
      error._tag === "LengthMismatch"

export interface DownloaderOptions {
  /** A transfer with no new bytes for this long is aborted and counted as a failed attempt. */
  readonly stallTimeout: Duration.Input
  readonly retryBaseDelay: Duration.Input
  readonly retryMaxDelay: Duration.Input
  readonly freeBytes: (directory: string) => number | undefined
}

/**
 * Sixty seconds without a byte: mirrors under load pause for seconds, rarely for a minute, and
 * a dead connection otherwise hangs until the kernel gives up hours later.
 */
export const defaultStallTimeout = Duration.seconds(60)
/** The first retry waits about 2 s; each next one doubles, up to a minute. */
export const defaultRetryBaseDelay = Duration.seconds(2)
export const defaultRetryMaxDelay = Duration.seconds(60)

/**
 * Delays between download attempts: exponential, capped, and scaled by a random 0.8-1.2 so that
 * containers sharing one mirror do not retry in lockstep.
 */
export const downloadRetrySchedule = (base: Duration.Input, max: Duration.Input) =>
  Schedule.exponential(base).pipe(
    Schedule.modifyDelay(({ duration }) =>
      Effect.succeed(Duration.min(duration, Duration.fromInputUnsafe(max)))
    ),
    Schedule.jittered
  )

/** The largest checksum list `fetchText` accepts; real ones are a few KiB. */
const maxTextLength = 16 * 1024 * 1024

const userAgent = "vm-runner"

/** Metadata kept beside a partial download, so a later attempt or run can resume it. */
const PartialMetadata = Schema.Struct({
  url: Schema.String,
  etag: Schema.optionalKey(Schema.String),
  lastModified: Schema.optionalKey(Schema.String),
  total: Schema.optionalKey(Schema.Number)
})
type PartialMetadata = typeof PartialMetadata.Type

const decodeMetadata = Schema.decodeUnknownOption(Schema.fromJsonString(PartialMetadata))

export const partialPathOf = (destination: string): string => `${destination}.part`
const metadataPathOf = (destination: string): string => `${destination}.part.json`

/** Starting point of an attempt: the bytes on disk and the version they belong to. */
interface ResumePoint {
  readonly offset: number
  readonly metadata: PartialMetadata | undefined
}

const describe = (cause: unknown): string =>
  cause instanceof Error ? cause.message : String(cause)

const isStrongEtag = (etag: string | undefined): etag is string =>
  etag !== undefined && !etag.startsWith("W/")

/** The validator for If-Range: a strong ETag, else Last-Modified (RFC 9110, section 13.1.5). */
const ifRangeValidator = (metadata: PartialMetadata): string | undefined =>
  isStrongEtag(metadata.etag) ? metadata.etag : metadata.lastModified

export const requestHeaders = (
  point: ResumePoint,
  cached: Validators | undefined
): Record<string, string> => {
  // Identity encoding: the bytes on disk must be the bytes the checksum and Range refer to.
  const headers: Record<string, string> = {
    "user-agent": userAgent,
    "accept-encoding": "identity"
  }
  const validator = point.metadata === undefined ? undefined : ifRangeValidator(point.metadata)
  if (point.offset > 0 && validator !== undefined) {
    headers.range = `bytes=${point.offset}-`
    headers["if-range"] = validator
  } else if (cached !== undefined) {
    if (cached.etag !== undefined) headers["if-none-match"] = cached.etag
    if (cached.lastModified !== undefined) headers["if-modified-since"] = cached.lastModified
  }
  return headers
}

/** Parses `Content-Range: bytes <start>-<end>/<total>`, or the form with `*` for the range. */
export const parseContentRange = (
  header: string | null
): { readonly start: number | undefined; readonly total: number | undefined } | undefined => {
  const match = /^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)$/i.exec(header?.trim() ?? "")
  if (match === null) return undefined
  return {
    start: match[1] === undefined ? undefined : Number(match[1]),
    total: match[2] === "*" ? undefined : Number(match[2])
  }
}

const lengthHeader = (response: Response): number | undefined => {
  const value = response.headers.get("content-length")
  return value !== null && /^\d+$/.test(value) ? Number(value) : undefined
}

const validatorsOf = (response: Response): Validators => ({
  etag: response.headers.get("etag") ?? undefined,
  lastModified: response.headers.get("last-modified") ?? undefined
})

class StallDetected {
  constructor(readonly received: number) {}
}

class WriteFailed {
  constructor(readonly cause: unknown) {}
}

/** Digests of a byte stream, keyed by algorithm, fed chunk by chunk during a download. */
type Hashers = Map<DigestAlgorithm, Bun.CryptoHasher>

/**
 * Starts sha256 always, because the cache names images by it, and sha512 when that is the
 * expected digest.
 *
 * NOTE: hashing runs on the thread that receives the body and costs about 0.7 CPU seconds per
 * GiB, which keeps loopback throughput below curl's on a busy machine. Hashing on a worker
 * thread measured no faster there (bench/download.ts and the benchmarks page).
 */
const startHashers = (expected: Digest | undefined): Hashers => {
  const hashers: Hashers = new Map([["sha256", new Bun.CryptoHasher("sha256")]])
  if (expected?.algorithm === "sha512") hashers.set("sha512", new Bun.CryptoHasher("sha512"))
  return hashers
}

const updateAll = (hashers: Hashers, chunk: Uint8Array) => {
  for (const hasher of hashers.values()) hasher.update(chunk)
}

/**
 * Streams a response body into the partial file from byte `offset` on, hashing it on the way. A
 * watchdog cancels the read once no byte arrived for `stallMillis`. The file is flushed and
 * closed before the promise settles, also when the read fails.
 */
const copyBody = async (
  body: ReadableStream<Uint8Array>,
  path: string,
  offset: number,
  hashers: Hashers,
  tracker: ProgressTracker,
  stallMillis: number
): Promise<number> => {
  let fd: number
  try {
    fd = openSync(path, offset > 0 ? "a" : "w")
    if (offset > 0) ftruncateSync(fd, offset)
  } catch (cause) {
    throw new WriteFailed(cause)
  }
  const reader = body.getReader()
  // FileSink batches writes into 1 MiB system calls. One writeSync per chunk measured no
  // faster in bench/download.ts.
  const writer = Bun.file(fd).writer({ highWaterMark: 1024 * 1024 })
  let received = 0
  let lastChunkAt = Date.now()
  let stalled = false
  const watchdog = setInterval(
    () => {
      if (Date.now() - lastChunkAt < stallMillis) return
      stalled = true
      reader.cancel().catch(() => {})
    },
    Math.max(10, Math.min(1000, stallMillis / 4))
  )
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      try {
        writer.write(value)
      } catch (cause) {
        throw new WriteFailed(cause)
      }
      updateAll(hashers, value)
      received += value.length
      tracker.advance(value.length)
      lastChunkAt = Date.now()
    }
  } catch (cause) {
    throw stalled ? new StallDetected(received) : cause
  } finally {
    clearInterval(watchdog)
    try {
      await writer.end()
    } catch (cause) {
      // biome-ignore lint/correctness/noUnsafeFinally: a lost write must not pass as success.
      throw new WriteFailed(cause)
    } finally {
      closeSync(fd)
    }
  }
  if (stalled) throw new StallDetected(received)
  return received
}

/** Feeds the bytes already on disk to the hashers, so the digest covers the whole file. */
const hashPrefix = (path: string, length: number, hashers: Hashers) =>
  Effect.tryPromise({
    try: async () => {
      for await (const chunk of Bun.file(path).slice(0, length).stream()) {
        updateAll(hashers, chunk)
      }
    },
    catch: (cause) => new ImageFileError({ operation: "read", path, detail: describe(cause) })
  })

const readResumePoint = (request: DownloadRequest) =>
  Effect.gen(function* () {
    const partial = partialPathOf(request.destination)
    const metadataPath = metadataPathOf(request.destination)
    const size = yield* Effect.sync(() => {
      try {
        return statSync(partial).size
      } catch {
        return 0
      }
    })
    const text = yield* Effect.promise(() =>
      Bun.file(metadataPath)
        .text()
        .catch(() => "")
    )
    const metadata = Option.getOrUndefined(decodeMetadata(text))
    const usable =
      size > 0 &&
      metadata !== undefined &&
      metadata.url === request.url &&
      ifRangeValidator(metadata) !== undefined
    if (size > 0 && !usable) {
      yield* Effect.logInfo(
        `discarding a partial download of ${request.url}: it cannot be resumed safely ` +
          "without the server's ETag or Last-Modified from when it started"
      )
    }
    return usable ? { offset: size, metadata } : { offset: 0, metadata: undefined }
  })

/**
 * Fetches URLs into files: resumable, verified, retried with backoff, with progress.
 */
export class Downloader extends Context.Service<
  Downloader,
  {
    /**
     * Downloads `request.url` to `request.destination`, resuming a partial file left by an
     * earlier attempt or run. The destination appears only once its length and digest are
     * verified; a partial file is never renamed to it.
     */
    download(request: DownloadRequest): Effect.Effect<DownloadResult, DownloadError>
    /** Fetches a small text resource, such as a SHA256SUMS file. */
    fetchText(url: string, attempts: number): Effect.Effect<string, DownloadError>
  }
>()("vm-runner/images/Downloader") {
  static readonly layerWith = (options: Partial<DownloaderOptions>) =>
    Layer.effect(
      Downloader,
      Effect.gen(function* () {
        const progress = yield* Progress
        return Downloader.of(
          makeDownloader(progress, {
            stallTimeout: options.stallTimeout ?? defaultStallTimeout,
            retryBaseDelay: options.retryBaseDelay ?? defaultRetryBaseDelay,
            retryMaxDelay: options.retryMaxDelay ?? defaultRetryMaxDelay,
            freeBytes: options.freeBytes ?? freeBytes
          })
        )
      })
    )

  static readonly layer = Downloader.layerWith({})
}

const makeDownloader = (
  progress: Progress["Service"],
  options: DownloaderOptions
): Downloader["Service"] => {
  const stallTimeout = Duration.fromInputUnsafe(options.stallTimeout)
  const schedule = downloadRetrySchedule(options.retryBaseDelay, options.retryMaxDelay)

  /** Sends the request; waiting for the response headers counts against the stall timeout. */
  const send = (url: string, headers: Record<string, string>, controller: AbortController) =>
    Effect.tryPromise({
      try: () =>
        fetch(url, { headers, redirect: "follow", signal: controller.signal, decompress: false }),
      catch: (cause) => new NetworkError({ url, detail: describe(cause) })
    }).pipe(
      Effect.timeoutOption(stallTimeout),
      Effect.flatMap(
        Option.match({
          onNone: () => Effect.fail(new StallTimeout({ url, timeout: stallTimeout, received: 0 })),
          onSome: Effect.succeed
        })
      )
    )

  const abortController = Effect.acquireRelease(
    Effect.sync(() => new AbortController()),
    (controller) => Effect.sync(() => controller.abort())
  )

  const cancelBody = (response: Response) =>
    Effect.promise(() => response.body?.cancel() ?? Promise.resolve())

  /**
   * Sorts a response into NotModified, an already complete partial file, or a body to read,
   * and fails on every other status.
   */
  const checkStatus = (
    request: DownloadRequest,
    point: ResumePoint,
    rangeRequested: boolean,
    response: Response
  ) =>
    Effect.gen(function* () {
      const { url, destination } = request
      const status = response.status
      if (status === 304 && !rangeRequested && request.cached !== undefined) {
        return "NotModified" as const
      }
      if (status === 416 && point.offset > 0) {
        const range = parseContentRange(response.headers.get("content-range"))
        // The partial file is already whole: an earlier run stopped before verifying it.
        if (range?.total === point.offset) return "Complete" as const
        yield* discardPartial(destination)
        return yield* new LengthMismatch({ url, expected: range?.total ?? 0, actual: point.offset })
      }
      if (status !== 200 && status !== 206) {
        yield* cancelBody(response)
        return yield* new HttpStatusError({ url, status, statusText: response.statusText })
      }
      if (status === 206 && !rangeRequested) {
        yield* cancelBody(response)
        return yield* new NetworkError({ url, detail: "the server sent 206 to a plain request" })
      }
      return "Body" as const
    })

  /** One attempt: request, check the status, then stream the body onto the partial file. */
  const attempt = (request: DownloadRequest, onResponse: () => void) =>
    Effect.gen(function* () {
      const { url, destination } = request
      const point = yield* readResumePoint(request)
      const controller = yield* abortController
      const headers = requestHeaders(point, request.cached)
      yield* Effect.logDebug(`GET ${url} ${JSON.stringify(headers)}`)
      const response = yield* send(url, headers, controller)

      const outcome = yield* checkStatus(request, point, headers.range !== undefined, response)
      if (outcome === "NotModified") return { _tag: "NotModified" } as const
      if (outcome === "Complete") {
        return yield* finish(request, point.offset, point.metadata, response.url)
      }
      onResponse()

      const plan = yield* planTransfer(request, point, response)
      const extra = request.extraSpace?.(plan.total ?? plan.remaining) ?? 0
      yield* ensureSpace(
        dirname(destination),
        plan.remaining + extra,
        `the ${request.label} download`,
        options.freeBytes
      )

      const hashers = startHashers(request.expectedDigest)
      const received = yield* receive(request, response, controller, plan, hashers)
      const size = plan.offset + received.bytes
      if (plan.total !== undefined && size !== plan.total) {
        if (size > plan.total) yield* discardPartial(destination)
        return yield* new LengthMismatch({ url, expected: plan.total, actual: size })
      }
      return yield* verifyAndPublish(request, size, hashers, plan, response.url)
    }).pipe(Effect.scoped)

  interface TransferPlan {
    readonly offset: number
    readonly total: number | undefined
    readonly remaining: number
    readonly metadata: PartialMetadata
  }

  /** Decides where the body goes: appended to the partial file, or over it from byte 0. */
  const planTransfer = (request: DownloadRequest, point: ResumePoint, response: Response) =>
    Effect.gen(function* () {
      const { url, destination } = request
      if (response.status === 206 && point.metadata !== undefined) {
        const range = parseContentRange(response.headers.get("content-range"))
        if (range?.start === point.offset) {
          const total = range.total ?? point.metadata.total
          yield* Effect.logInfo(
            `resuming the ${request.label} download at ${formatSize(point.offset)}: ${url}`
          )
          return {
            offset: point.offset,
            total,
            remaining: total === undefined ? 0 : total - point.offset,
            metadata: point.metadata
          }
        }
        yield* discardPartial(destination)
        return yield* new NetworkError({
          url,
          detail:
            "the server answered a range request with Content-Range " +
            `${response.headers.get("content-range")}`
        })
      }
      if (point.offset > 0) {
        yield* Effect.logWarning(
          `restarting the ${request.label} download from the beginning: the server ignored the ` +
            `range request or the file changed upstream: ${url}`
        )
      } else {
        yield* Effect.logInfo(`downloading the ${request.label}: ${url}`)
      }
      const total = lengthHeader(response)
      const validators = validatorsOf(response)
      const metadata: PartialMetadata = {
        url,
        ...(validators.etag === undefined ? {} : { etag: validators.etag }),
        ...(validators.lastModified === undefined ? {} : { lastModified: validators.lastModified }),
        ...(total === undefined ? {} : { total })
      }
      yield* writeFileAtomic(metadataPathOf(destination), JSON.stringify(metadata))
      return { offset: 0, total, remaining: total ?? 0, metadata }
    })

  const receive = (
    request: DownloadRequest,
    response: Response,
    controller: AbortController,
    plan: TransferPlan,
    hashers: Hashers
  ) =>
    Effect.gen(function* () {
      const partial = partialPathOf(request.destination)
      if (plan.offset > 0) yield* hashPrefix(partial, plan.offset, hashers)
      const tracker = yield* progress.track(request.label, plan.offset, plan.total)
      const body = response.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() })
      const toError = (cause: unknown): DownloadError =>
        cause instanceof StallDetected
          ? new StallTimeout({
              url: request.url,
              timeout: stallTimeout,
              received: cause.received
            })
          : cause instanceof WriteFailed
            ? new ImageFileError({
                operation: "write",
                path: partial,
                detail: describe(cause.cause)
              })
            : new NetworkError({ url: request.url, detail: describe(cause) })
      const bytes = yield* Effect.callback<number, DownloadError>((resume) => {
        const copied = copyBody(
          body,
          partial,
          plan.offset,
          hashers,
          tracker,
          Duration.toMillis(stallTimeout)
        ).then(
          (count) => resume(Effect.succeed(count)),
          (cause) => resume(Effect.fail(toError(cause)))
        )
        // On interruption (SIGTERM), abort the transfer and wait until the bytes received so far
        // are flushed and the file is closed, so the partial file is whole for the next run.
        return Effect.promise(() => {
          controller.abort()
          return copied
        })
      })
      return { bytes }
    }).pipe(Effect.scoped)

  /** Verifies and publishes a partial file that already contains every byte. */
  const finish = (
    request: DownloadRequest,
    size: number,
    metadata: PartialMetadata | undefined,
    finalUrl: string
  ) =>
    Effect.gen(function* () {
      const hashers = startHashers(request.expectedDigest)
      yield* hashPrefix(partialPathOf(request.destination), size, hashers)
      const plan: TransferPlan = {
        offset: size,
        total: size,
        remaining: 0,
        metadata: metadata ?? { url: request.url }
      }
      return yield* verifyAndPublish(request, size, hashers, plan, finalUrl)
    })

  const verifyAndPublish = (
    request: DownloadRequest,
    size: number,
    hashers: Hashers,
    plan: TransferPlan,
    finalUrl: string
  ) =>
    Effect.gen(function* () {
      const digests = new Map(
        [...hashers].map(([algorithm, hasher]) => [algorithm, hasher.digest("hex")])
      )
      const expected = request.expectedDigest
      if (expected !== undefined) {
        const actual = digests.get(expected.algorithm) ?? ""
        if (actual !== expected.hex) {
          yield* discardPartial(request.destination)
          return yield* new ChecksumMismatch({
            url: request.url,
            algorithm: expected.algorithm,
            expected: expected.hex,
            actual
          })
        }
      }
      const partial = partialPathOf(request.destination)
      yield* fileOperation("rename", partial, () => renameSync(partial, request.destination))
      yield* removeQuietly(metadataPathOf(request.destination))
      const result: DownloadResult = {
        _tag: "Downloaded",
        path: request.destination,
        size,
        sha256: digests.get("sha256") ?? "",
        digestChecked: expected !== undefined,
        validators: { etag: plan.metadata.etag, lastModified: plan.metadata.lastModified },
        finalUrl,
        resumedFrom: plan.offset
      }
      return result
    })

  const discardPartial = (destination: string) =>
    Effect.all([
      removeQuietly(partialPathOf(destination)),
      removeQuietly(metadataPathOf(destination))
    ]).pipe(Effect.asVoid)

  const retrying = <A>(
    request: Pick<DownloadRequest, "url" | "label" | "attempts" | "failFastBeforeResponse">,
    run: (onResponse: () => void) => Effect.Effect<A, DownloadError>
  ) =>
    Effect.suspend(() => {
      const attempts = Math.max(1, request.attempts)
      let attemptNumber = 0
      let responded = false
      const once = Effect.suspend(() => {
        attemptNumber++
        return run(() => {
          responded = true
        })
      }).pipe(
        Effect.tapError((error) =>
          isTransient(error) && attemptNumber < attempts && !failFast(error)
            ? Effect.logWarning(
                `${request.label} download attempt ${attemptNumber} of ${attempts} failed: ` +
                  `${error.message}; retrying`
              )
            : Effect.void
        )
      )
      const failFast = (error: DownloadError) =>
        request.failFastBeforeResponse === true && !responded && isTransient(error)
      return once.pipe(
        Effect.retry({
          schedule,
          times: attempts - 1,
          while: (error) => isTransient(error) && !failFast(error)
        }),
        Effect.mapError(
          (error): DownloadError =>
            isTransient(error)
              ? new DownloadFailed({ url: request.url, attempts: attemptNumber, cause: error })
              : error
        )
      )
    })

  const download = Effect.fn("Downloader.download")(
    function* (request: DownloadRequest) {
      return yield* retrying(request, (onResponse) => attempt(request, onResponse))
    },
    (effect, request) => Effect.annotateLogs(effect, { url: request.url })
  )

  const fetchTextOnce = (url: string) =>
    Effect.gen(function* () {
      const controller = yield* abortController
      const response = yield* send(url, { "user-agent": userAgent }, controller)
      if (!response.ok) {
        return yield* new HttpStatusError({
          url,
          status: response.status,
          statusText: response.statusText
        })
      }
      const length = lengthHeader(response)
      if (length !== undefined && length > maxTextLength) {
        return yield* new NetworkError({
          url,
          detail: `the file is ${formatSize(length)}, more than a checksum list can be`
        })
      }
      return yield* Effect.tryPromise({
        try: () => response.text(),
        catch: (cause) => new NetworkError({ url, detail: describe(cause) })
      }).pipe(
        Effect.timeoutOption(stallTimeout),
        Effect.flatMap(
          Option.match({
            onNone: () =>
              Effect.fail(new StallTimeout({ url, timeout: stallTimeout, received: 0 })),
            onSome: Effect.succeed
          })
        )
      )
    }).pipe(Effect.scoped)

  const fetchText = Effect.fn("Downloader.fetchText")(function* (url: string, attempts: number) {
    return yield* retrying({ url, label: "checksum list", attempts }, () => fetchTextOnce(url))
  })

  return { download, fetchText }
}
