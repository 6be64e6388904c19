import { existsSync, realpathSync, statSync } from "node:fs"
import { basename } from "node:path"
import { Context, Data, Effect, Layer, Option, Schema } from "effect"
import type { BootFrom, Distro, ImageChecksum } from "../domain/Config.ts"
import { ExitCode } from "../domain/ExitCode.ts"
import { type ImageCacheLayout, makeImageCacheLayout } from "../domain/Layout.ts"
import { Exec, type ExecError } from "../process/Exec.ts"
import { type Digest, fileNameOfUrl, findDigest, parseSumsFile } from "./Checksums.ts"
import { type Detection, isArchive, isCompression, isDiskFormat } from "./Detect.ts"
import {
  type DownloadError,
  Downloader,
  type DownloadRequest,
  type DownloadResult
} from "./Downloader.ts"
import { FileLock, type FileLockError } from "./FileLock.ts"
import {
  ensureDirectory,
  ensureSpace,
  fileOperation,
  freeBytes,
  type ImageFileError,
  type NotEnoughSpace,
  publishReadOnly,
  removeQuietly,
  safeFileName,
  stemOf,
  writeFileAtomic
} from "./Files.ts"
import { convertToQcow2, imageInfo, measureQcow2 } from "./QemuImg.ts"
import { detectFile, type UnpackError, type UnsafeArchive, unpackImage } from "./Unpack.ts"

/** A boot source ready for libvirt: a qcow2 to use as a backing file, an ISO, or nothing. */
export type ResolvedImage =
  | {
      readonly _tag: "DiskImage"
      readonly path: string
      readonly format: "qcow2"
      /** True when nothing was downloaded, unpacked or converted for this call. */
      readonly fromCache: boolean
      /** True when the file was checked against a published sha256 or sha512 digest. */
      readonly digestChecked: boolean
    }
  | {
      readonly _tag: "Iso"
      readonly path: string
      readonly fromCache: boolean
      readonly digestChecked: boolean
    }
  | { readonly _tag: "Blank" }

export type ResolvedFile = Exclude<ResolvedImage, { readonly _tag: "Blank" }>

/** The checksum list does not name the image file. */
export class ChecksumNotListed extends Data.TaggedError("ChecksumNotListed")<{
  readonly sumsUrl: string
  readonly fileName: string
}> {
  readonly exitCode = ExitCode.Image
  override get message(): string {
    return (
      `the checksum list ${this.sumsUrl} has no sha256 or sha512 line for ${this.fileName}; ` +
      "fix checksum_url in the catalogue, or replace it with a sha256 digest"
    )
  }
}

/** The file is not something a VM can boot: an HTML page, an empty file, or a risky qcow2. */
export class UnusableImage extends Data.TaggedError("UnusableImage")<{
  readonly source: string
  readonly reason: string
}> {
  readonly exitCode = ExitCode.Image
  override get message(): string {
    return `cannot use ${this.source} as a boot source: ${this.reason}`
  }
}

export type ImageError =
  | DownloadError
  | ChecksumNotListed
  | UnusableImage
  | UnpackError
  | UnsafeArchive
  | ImageFileError
  | NotEnoughSpace
  | FileLockError
  | ExecError

/** Index record of one source URL, so a later run can send a conditional request. */
const IndexEntry = Schema.Struct({
  url: Schema.String,
  etag: Schema.optionalKey(Schema.String),
  lastModified: Schema.optionalKey(Schema.String),
  /** sha256 of the downloaded file, before any unpacking. */
  sha256: Schema.String,
  /** The published digest the download matched, when there was one. */
  verified: Schema.optionalKey(
    Schema.Struct({ algorithm: Schema.Literals(["sha256", "sha512"]), hex: Schema.String })
  ),
  /** File name of the published image in the images directory. */
  image: Schema.String,
  kind: Schema.Literals(["DiskImage", "Iso"]),
  /** When the server last confirmed this version, in milliseconds since the epoch. */
  checkedAt: Schema.Number
})
type IndexEntry = typeof IndexEntry.Type

const decodeIndexEntry = Schema.decodeUnknownOption(Schema.fromJsonString(IndexEntry))

const hashHex = (text: string): string => new Bun.CryptoHasher("sha256").update(text).digest("hex")

/** 16 hex digits (64 bits) name a source; enough to never collide within one cache. */
const keyLength = 16

export const urlKey = (url: string): string => hashHex(url).slice(0, keyLength)

/** Names a local file by its identity, so an edited or replaced file gets a new conversion. */
export const localKey = (path: string): string => {
  const real = realpathSync(path)
  const stats = statSync(real)
  return hashHex([real, stats.dev, stats.ino, stats.size, stats.mtimeMs].join("\0")).slice(
    0,
    keyLength
  )
}

interface UrlSource {
  readonly url: string
  readonly checksum: ImageChecksum | undefined
  /** "base image" or "boot source", for logs and messages. */
  readonly label: string
  readonly attempts: number
}

/** An image ready to publish, or a file that is used where it is. */
interface Finalized {
  readonly path: string
  readonly kind: "DiskImage" | "Iso"
}

/**
 * Fetches, verifies, unpacks and converts boot sources into a cache shared by every VM under
 * one data directory, and returns a file libvirt can use.
 */
export class ImageCache extends Context.Service<
  ImageCache,
  {
    /** Returns the catalogue image of `distro`, downloading it or refreshing the cached copy. */
    resolveCatalogueImage(distro: Distro, attempts: number): Effect.Effect<ResolvedFile, ImageError>
    /**
     * Returns the image `BOOT_FROM` names. A local qcow2 or ISO is used in place and never
     * written to; other local formats are converted into the cache.
     */
    resolveBootSource(
      bootFrom: Exclude<BootFrom, { readonly _tag: "Catalogue" }>,
      attempts: number
    ): Effect.Effect<ResolvedImage, ImageError>
  }
>()("vm-runner/images/ImageCache") {
  /** The cache under `<dataRoot>/base`. */
  static readonly layer = (dataRoot: string) =>
    Layer.effect(
      ImageCache,
      Effect.gen(function* () {
        const services = {
          layout: makeImageCacheLayout(dataRoot),
          downloader: yield* Downloader,
          locks: yield* FileLock,
          exec: yield* Exec
        }
        return ImageCache.of(makeImageCache(services))
      })
    )
}

interface Services {
  readonly layout: ImageCacheLayout
  readonly downloader: Downloader["Service"]
  readonly locks: FileLock["Service"]
  readonly exec: Exec["Service"]
}

const makeImageCache = (services: Services): ImageCache["Service"] => {
  const { layout, downloader, locks } = services
  const provideExec = Effect.provideService(Exec, services.exec)

  const readIndex = (key: string) =>
    Effect.promise(() =>
      Bun.file(layout.index(key))
        .text()
        .catch(() => "")
    ).pipe(
      Effect.map((text) => Option.getOrUndefined(decodeIndexEntry(text))),
      // An entry whose image was deleted by hand is as good as no entry.
      Effect.map((entry) =>
        entry !== undefined && existsSync(layout.image(entry.image)) ? entry : undefined
      )
    )

  const writeIndex = (key: string, entry: IndexEntry) =>
    ensureDirectory(layout.indexDir).pipe(
      Effect.andThen(writeFileAtomic(layout.index(key), `${JSON.stringify(entry, null, 2)}\n`))
    )

  const fromEntry = (entry: IndexEntry, fromCache: boolean): ResolvedFile =>
    entry.kind === "Iso"
      ? {
          _tag: "Iso",
          path: layout.image(entry.image),
          fromCache,
          digestChecked: entry.verified !== undefined
        }
      : {
          _tag: "DiskImage",
          path: layout.image(entry.image),
          format: "qcow2",
          fromCache,
          digestChecked: entry.verified !== undefined
        }

  const expectedDigest = (checksum: ImageChecksum | undefined, url: string, attempts: number) =>
    Effect.gen(function* () {
      if (checksum === undefined) return undefined
      if (checksum._tag === "Digest") {
        return { algorithm: checksum.algorithm, hex: checksum.hex } satisfies Digest
      }
      const text = yield* downloader.fetchText(checksum.url, attempts)
      const fileName = fileNameOfUrl(url)
      const digest = findDigest(parseSumsFile(text), fileName)
      if (digest === undefined) {
        return yield* new ChecksumNotListed({ sumsUrl: checksum.url, fileName })
      }
      return digest
    })

  const matchesEntry = (entry: IndexEntry, digest: Digest): boolean =>
    (digest.algorithm === "sha256" && digest.hex === entry.sha256) ||
    (entry.verified?.algorithm === digest.algorithm && entry.verified.hex === digest.hex)

  /** A qcow2 from the network must not point at other files: they would be host files. */
  const checkSelfContained = (path: string, source: string) =>
    imageInfo(path, "qcow2").pipe(
      provideExec,
      Effect.flatMap((info) =>
        info.referencedFile === undefined
          ? Effect.void
          : Effect.fail(
              new UnusableImage({
                source,
                reason:
                  `the qcow2 image refers to another file (${info.referencedFile}); ` +
                  "downloaded images must be self-contained"
              })
            )
      )
    )

  const rejectUnusable = (detection: Detection, source: string) =>
    detection.format === "html"
      ? Effect.fail(
          new UnusableImage({
            source,
            reason: "it is an HTML page, not an image; the URL may point at a download page"
          })
        )
      : detection.format === "empty"
        ? Effect.fail(new UnusableImage({ source, reason: "the file is empty" }))
        : Effect.void

  /**
   * Turns an unpacked file into something bootable: an ISO or qcow2 stays as it is, and other
   * disk formats become qcow2 in `workDir`. `owned` files (made by the cache) are checked more
   * strictly than the user's own.
   */
  const finalize = (
    path: string,
    detection: Detection,
    workDir: string,
    source: string,
    owned: boolean
  ) =>
    Effect.gen(function* () {
      yield* rejectUnusable(detection, source)
      const format = detection.format
      if (format === "iso") return { path, kind: "Iso" } satisfies Finalized
      if (format === "qcow2") {
        if (owned) yield* checkSelfContained(path, source)
        else yield* imageInfo(path, "qcow2").pipe(provideExec)
        return { path, kind: "DiskImage" } satisfies Finalized
      }
      if (!isDiskFormat(format)) {
        return yield* new UnusableImage({ source, reason: `unexpected ${format} content` })
      }
      if (format === "raw" && detection.partitionTable === undefined) {
        yield* Effect.logWarning(
          `${source} has no partition table and no known image signature; ` +
            "booting it as a raw disk"
        )
      }
      const required = yield* measureQcow2(path, format).pipe(provideExec)
      yield* ensureSpace(layout.imagesDir, required, `converting ${format} to qcow2`, freeBytes)
      const converted = `${workDir}/converted.qcow2`
      yield* ensureDirectory(workDir)
      yield* convertToQcow2(path, format, converted).pipe(provideExec)
      return { path: converted, kind: "DiskImage" } satisfies Finalized
    })

  /** Unpacks (when needed) and finalizes `source` inside the work directory of `key`. */
  const prepare = (source: string, key: string, label: string, owned: boolean) =>
    Effect.gen(function* () {
      const workDir = layout.workDir(key)
      const detection = yield* detectFile(source).pipe(provideExec)
      yield* Effect.logDebug(`${source}: ${detection.format} (${detection.evidence})`)
      if (!isCompression(detection.format) && !isArchive(detection.format)) {
        return yield* finalize(source, detection, workDir, label, owned)
      }
      const unpacked = yield* unpackImage(source, workDir).pipe(provideExec)
      yield* Effect.logInfo(`unpacked ${unpacked.layers.join(" and ")}: ${label}`)
      return yield* finalize(unpacked.path, unpacked.detection, workDir, label, true)
    })

  const imageName = (stem: string, id: string, kind: Finalized["kind"]) =>
    `${safeFileName(stem)}-${id}.${kind === "Iso" ? "iso" : "qcow2"}`

  /** Publishes a verified download and records it in the index. */
  const publishDownload = (
    key: string,
    source: UrlSource,
    result: Extract<DownloadResult, { _tag: "Downloaded" }>,
    verified: Digest | undefined
  ) =>
    Effect.gen(function* () {
      const workDir = layout.workDir(key)
      yield* removeQuietly(workDir)
      const finalized = yield* prepare(result.path, key, source.url, true)
      const fileName = imageName(
        stemOf(fileNameOfUrl(source.url)),
        result.sha256.slice(0, keyLength),
        finalized.kind
      )
      // NOTE: the image this one supersedes stays, because work disks of other VMs may still
      // use it as their backing file. Nothing removes superseded images yet.
      yield* publishReadOnly(finalized.path, layout.image(fileName))
      const entry: IndexEntry = {
        url: source.url,
        ...(result.validators.etag === undefined ? {} : { etag: result.validators.etag }),
        ...(result.validators.lastModified === undefined
          ? {}
          : { lastModified: result.validators.lastModified }),
        sha256: result.sha256,
        ...(verified === undefined ? {} : { verified }),
        image: fileName,
        kind: finalized.kind,
        checkedAt: Date.now()
      }
      yield* writeIndex(key, entry)
      yield* Effect.logInfo(`${source.label} ready: ${layout.image(fileName)}`)
      return fromEntry(entry, false)
    }).pipe(
      Effect.ensuring(Effect.all([removeQuietly(layout.workDir(key)), removeQuietly(result.path)]))
    )

  const useCachedAfterFailure = (entry: IndexEntry, source: UrlSource, error: ImageError) =>
    Effect.logWarning(
      `cannot check for a newer version: ` +
        `${error._tag === "DownloadFailed" ? error.cause.message : error.message}; using the ` +
        `cached ${source.label} from ${new Date(entry.checkedAt).toISOString()}`
    ).pipe(Effect.as(fromEntry(entry, true)))

  /**
   * Runs a network step. When it fails for a network or HTTP reason and a cached copy exists,
   * it returns the failure as a value, so the caller can fall back to the cache.
   */
  const orCached = <A, E extends ImageError>(
    entry: IndexEntry | undefined,
    step: Effect.Effect<A, E>
  ) =>
    step.pipe(
      Effect.map((value) => ({ ok: true as const, value })),
      Effect.catchIf(
        (error) =>
          entry !== undefined &&
          (error._tag === "DownloadFailed" || error._tag === "HttpStatusError"),
        (error) => Effect.succeed({ ok: false as const, error })
      )
    )

  const downloadRequest = (
    key: string,
    source: UrlSource,
    expected: Digest | undefined,
    current: IndexEntry | undefined,
    cached: boolean
  ): DownloadRequest => {
    const fileName = fileNameOfUrl(source.url)
    return {
      url: source.url,
      destination: layout.download(key, safeFileName(fileName)),
      label: source.label,
      attempts: source.attempts,
      expectedDigest: expected,
      cached:
        current === undefined
          ? undefined
          : { etag: current.etag, lastModified: current.lastModified },
      // Room to unpack, estimated as twice the download. Each layer is checked again before it
      // is unpacked, with the size its format records where it records one.
      extraSpace: /\.(gz|xz|bz2|zst|zip|7z|tar|tgz|txz|ova)$/i.test(fileName)
        ? (length) => 2 * length
        : undefined,
      failFastBeforeResponse: cached
    }
  }

  /** Under the source's lock: reuse, refresh or download the image behind a URL. */
  const refreshUrl = (key: string, source: UrlSource, requestedAt: number) =>
    Effect.gen(function* () {
      const entry = yield* readIndex(key)
      if (entry !== undefined && entry.checkedAt >= requestedAt) {
        // Another process refreshed it while this one waited for the lock.
        return fromEntry(entry, true)
      }

      // With a cached copy at hand, one attempt decides: offline means "use the cache" at once.
      const sumsAttempts = entry === undefined ? source.attempts : 1
      const digest = yield* orCached(
        entry,
        expectedDigest(source.checksum, source.url, sumsAttempts)
      )
      if (!digest.ok) return yield* useCachedAfterFailure(entry!, source, digest.error)
      const expected = digest.value

      // A cached copy whose digest differs from the published one is stale, whatever its ETag.
      const current =
        entry !== undefined && (expected === undefined || matchesEntry(entry, expected))
          ? entry
          : undefined
      if (current !== undefined && expected !== undefined) {
        // The catalogue's digest (or the current checksum list) names exactly this file, so
        // nothing newer can be valid and the server is not asked for the image again.
        yield* Effect.logInfo(
          `${source.label} matches the published ${expected.algorithm}: ${layout.image(current.image)}`
        )
        return fromEntry(current, true)
      }
      if (current !== undefined && !current.etag && !current.lastModified) {
        yield* Effect.logInfo(
          `the server sent no ETag or Last-Modified for ${source.url}, so a newer version ` +
            `cannot be detected; using the cached ${source.label}`
        )
        return fromEntry(current, true)
      }

      const request = downloadRequest(key, source, expected, current, entry !== undefined)
      const result = yield* orCached(entry, downloader.download(request))
      if (!result.ok) return yield* useCachedAfterFailure(entry!, source, result.error)
      if (result.value._tag === "NotModified") {
        yield* writeIndex(key, { ...current!, checkedAt: Date.now() })
        yield* Effect.logInfo(`${source.label} is up to date: ${layout.image(current!.image)}`)
        return fromEntry(current!, true)
      }
      return yield* publishDownload(key, source, result.value, expected)
    })

  const resolveUrl = (source: UrlSource) =>
    Effect.gen(function* () {
      const key = urlKey(source.url)
      const requestedAt = Date.now()
      yield* ensureDirectory(layout.downloadsDir)
      return yield* locks.withLock(
        layout.lock(key),
        `downloading ${source.url}`,
        refreshUrl(key, source, requestedAt)
      )
    }).pipe(Effect.annotateLogs({ image: source.url }))

  /** Converts or unpacks a local file into the cache, unless an earlier run already did. */
  const resolveLocal = (path: string) =>
    Effect.gen(function* () {
      const detection = yield* detectFile(path).pipe(provideExec)
      yield* rejectUnusable(detection, path)
      if (detection.format === "iso" || detection.format === "qcow2") {
        const used = yield* finalize(path, detection, "", path, false)
        return { ...toResolved(used), fromCache: false } satisfies ResolvedFile
      }
      const key = yield* fileOperation("read", path, () => localKey(path))
      const stem = stemOf(basename(path))
      const findConverted = () =>
        (["DiskImage", "Iso"] as const)
          .map((kind) => ({ kind, path: layout.image(imageName(stem, `local-${key}`, kind)) }))
          .find((candidate) => existsSync(candidate.path))
      const cached = findConverted()
      if (cached !== undefined) return { ...toResolved(cached), fromCache: true }

      yield* ensureDirectory(layout.downloadsDir)
      return yield* locks.withLock(
        layout.lock(key),
        `converting ${path}`,
        Effect.gen(function* () {
          // A process that held the lock before this one may have converted it meanwhile.
          const converted = findConverted()
          if (converted !== undefined) return { ...toResolved(converted), fromCache: true }

          yield* removeQuietly(layout.workDir(key))
          const finalized = yield* prepare(path, key, path, false)
          const target = layout.image(imageName(stem, `local-${key}`, finalized.kind))
          yield* publishReadOnly(finalized.path, target)
          yield* Effect.logInfo(`boot source ready: ${target}`)
          return { ...toResolved({ path: target, kind: finalized.kind }), fromCache: false }
        }).pipe(Effect.ensuring(removeQuietly(layout.workDir(key))))
      )
    }).pipe(Effect.annotateLogs({ image: path }))

  const resolveCatalogueImage = Effect.fn("ImageCache.resolveCatalogueImage")(function* (
    distro: Distro,
    attempts: number
  ) {
    return yield* resolveUrl({
      url: distro.url,
      checksum: distro.checksum,
      label: "base image",
      attempts
    })
  })

  const resolveBootSource = Effect.fn("ImageCache.resolveBootSource")(function* (
    bootFrom: Exclude<BootFrom, { readonly _tag: "Catalogue" }>,
    attempts: number
  ) {
    switch (bootFrom._tag) {
      case "Blank":
        return { _tag: "Blank" } satisfies ResolvedImage
      case "Url":
        return yield* resolveUrl({
          url: bootFrom.url,
          checksum: undefined,
          label: "boot source",
          attempts
        })
      case "Path":
        return yield* resolveLocal(bootFrom.path)
    }
  })

  return { resolveCatalogueImage, resolveBootSource }
}

const toResolved = (file: Finalized): ResolvedFile =>
  file.kind === "Iso"
    ? { _tag: "Iso", path: file.path, fromCache: false, digestChecked: false }
    : {
        _tag: "DiskImage",
        path: file.path,
        format: "qcow2",
        fromCache: false,
        digestChecked: false
      }
