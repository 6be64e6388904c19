import { Data, Effect } from "effect"
import type { VmConfig } from "../domain/Config.ts"
import { ExitCode } from "../domain/ExitCode.ts"
import type { Layout } from "../domain/Layout.ts"
import { QemuImg } from "../storage/QemuImg.ts"
import type { BaseImage } from "./Plan.ts"

export class ImageUnavailable extends Data.TaggedError("ImageUnavailable")<{
  readonly detail: string
}> {
  readonly exitCode = ExitCode.Image
  override get message(): string {
    return this.detail
  }
}

// TODO: replace with the image cache (downloads, checksums, archives) when it lands; this
// handles only local images and ISOs.
export const resolveImages = (config: VmConfig, _layout: Layout) =>
  Effect.gen(function* () {
    const qemuImg = yield* QemuImg
    const from = config.boot.from
    if (from._tag === "Path" && from.hint === "iso") {
      return { base: { _tag: "Blank" } as BaseImage, installIso: from.path }
    }
    if (from._tag === "Path") {
      const info = yield* qemuImg.info(from.path)
      return {
        base: {
          _tag: "Image",
          path: from.path,
          format: info.format,
          virtualSize: info.virtualSize
        } as BaseImage,
        installIso: undefined
      }
    }
    if (from._tag === "Blank")
      return { base: { _tag: "Blank" } as BaseImage, installIso: undefined }
    return yield* new ImageUnavailable({ detail: "downloads are not implemented yet" })
  })
