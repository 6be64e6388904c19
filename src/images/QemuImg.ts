import { Effect, Schema } from "effect"
import { ExitCode } from "../domain/ExitCode.ts"
import { Exec } from "../process/Exec.ts"
import type { DiskFormat } from "./Detect.ts"
import { qemuDriverName } from "./Detect.ts"
import { ImageFileError } from "./Files.ts"

/** The fields of `qemu-img info --output=json` that the image cache checks. */
const InfoOutput = Schema.Struct({
  "virtual-size": Schema.Number,
  "backing-filename": Schema.optionalKey(Schema.String),
  "format-specific": Schema.optionalKey(
    Schema.Struct({
      data: Schema.optionalKey(Schema.Struct({ "data-file": Schema.optionalKey(Schema.String) }))
    })
  )
})

const MeasureOutput = Schema.Struct({ required: Schema.Number })

export interface ImageInfo {
  readonly virtualSize: number
  /** Another file the image reads from: a backing file or a qcow2 external data file. */
  readonly referencedFile: string | undefined
}

const decodeJson = <S extends Schema.Top & { readonly DecodingServices: never }>(
  schema: S,
  path: string,
  text: string
) =>
  Schema.decodeUnknownEffect(Schema.fromJsonString(schema))(text).pipe(
    Effect.mapError(
      (error) =>
        new ImageFileError({
          operation: "inspect",
          path,
          detail: `unexpected qemu-img output: ${error.message}`
        })
    )
  )

/**
 * Reads an image's header with the driver named explicitly, so qemu-img never guesses a format
 * from the content of a raw file.
 */
export const imageInfo = Effect.fn("QemuImg.imageInfo")(function* (
  path: string,
  format: DiskFormat
) {
  const exec = yield* Exec
  const result = yield* exec.run(
    ["qemu-img", "info", "--output=json", "-f", qemuDriverName(format), path],
    { failureExitCode: ExitCode.Image }
  )
  const info = yield* decodeJson(InfoOutput, path, result.text)
  const summary: ImageInfo = {
    virtualSize: info["virtual-size"],
    referencedFile: info["backing-filename"] ?? info["format-specific"]?.data?.["data-file"]
  }
  return summary
})

/** Bytes a qcow2 copy of `path` needs, as `qemu-img measure` computes them. */
export const measureQcow2 = Effect.fn("QemuImg.measureQcow2")(function* (
  path: string,
  format: DiskFormat
) {
  const exec = yield* Exec
  const result = yield* exec.run(
    ["qemu-img", "measure", "--output=json", "-f", qemuDriverName(format), "-O", "qcow2", path],
    { failureExitCode: ExitCode.Image }
  )
  return (yield* decodeJson(MeasureOutput, path, result.text)).required
})

/** Writes a qcow2 copy of `source` to `target`; the source is only read. */
export const convertToQcow2 = Effect.fn("QemuImg.convertToQcow2")(function* (
  source: string,
  format: DiskFormat,
  target: string
) {
  const exec = yield* Exec
  yield* Effect.logInfo(`converting ${format} image to qcow2: ${source}`)
  yield* exec.run(
    ["qemu-img", "convert", "-f", qemuDriverName(format), "-O", "qcow2", source, target],
    { failureExitCode: ExitCode.Image }
  )
})
