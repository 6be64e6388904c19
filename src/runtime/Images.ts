import { Effect } from "effect"
import type { VmConfig } from "../domain/Config.ts"
import { ImageCache, type ResolvedFile, type ResolvedImage } from "../images/ImageCache.ts"
import { QemuImg } from "../storage/QemuImg.ts"
import type { BaseImage } from "./Plan.ts"

/** What the run boots: the work disk's base, and an installer ISO when there is one. */
export interface ResolvedImages {
  readonly base: BaseImage
  readonly installIso: string | undefined
}

/** Describes where an image came from: the user's own file, the cache, or a download. */
const describe = (file: ResolvedFile, localPath?: string) => {
  let origin = file.fromCache ? "cached" : "downloaded"
  if (file.path === localPath) origin = "the local file, used in place"
  return `${file.path} (${origin}${file.digestChecked ? ", checksum verified" : ""})`
}

const baseFrom = (file: ResolvedFile, localPath?: string) =>
  Effect.gen(function* () {
    const qemuImg = yield* QemuImg
    const info = yield* qemuImg.info(file.path)
    yield* Effect.logInfo(`image: ${describe(file, localPath)}`)
    return {
      _tag: "Image",
      path: file.path,
      format: "qcow2",
      virtualSize: info.virtualSize
    } as const
  })

/** Fetches (or finds in the cache) what BOOT_FROM names; undefined for the catalogue image. */
export const fetchBootSource = (config: VmConfig) =>
  Effect.gen(function* () {
    const from = config.boot.from
    if (from._tag === "Catalogue") return undefined
    const cache = yield* ImageCache
    return yield* cache.resolveBootSource(from, config.runtime.downloadRetries)
  })

/**
 * Completes the images the run needs: the catalogue image when there is no BOOT_FROM, or
 * under an ISO when BLANK_DISK=0 asks for it; an ISO otherwise boots over a blank work disk.
 */
export const resolveImages = (config: VmConfig, source: ResolvedImage | undefined) =>
  Effect.gen(function* () {
    const cache = yield* ImageCache
    const catalogueBase = () =>
      cache
        .resolveCatalogueImage(config.distro, config.runtime.downloadRetries)
        .pipe(Effect.flatMap((file) => baseFrom(file)))

    if (source === undefined) return { base: yield* catalogueBase(), installIso: undefined }
    const localPath = config.boot.from._tag === "Path" ? config.boot.from.path : undefined
    switch (source._tag) {
      case "Blank":
        return { base: { _tag: "Blank" } as const, installIso: undefined }
      case "DiskImage":
        return { base: yield* baseFrom(source, localPath), installIso: undefined }
      case "Iso": {
        yield* Effect.logInfo(`installer ISO: ${describe(source, localPath)}`)
        const base: BaseImage = config.boot.blankDisk ? { _tag: "Blank" } : yield* catalogueBase()
        return { base, installIso: source.path }
      }
    }
  })
