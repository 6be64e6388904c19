import { Context, Data, Effect, Layer } from "effect"
import { type ByteSize, formatByteSize } from "../domain/ByteSize.ts"
import { ExitCode } from "../domain/ExitCode.ts"
import { Exec } from "../process/Exec.ts"

export interface ImageInfo {
  readonly format: string
  readonly virtualSize: number
  readonly actualSize: number
  readonly backingFile: string | undefined
}

export class DiskError extends Data.TaggedError("DiskError")<{
  readonly path: string
  readonly operation: string
  readonly detail: string
}> {
  readonly exitCode = ExitCode.Image
  override get message(): string {
    return `cannot ${this.operation} ${this.path}: ${this.detail}`
  }
}

/** qemu-img operations on the VM's disk files. */
export class QemuImg extends Context.Service<
  QemuImg,
  {
    info(path: string): Effect.Effect<ImageInfo, DiskError>
    /** Creates a qcow2 overlay whose reads fall through to `backing` until written. */
    createOverlay(
      path: string,
      backing: string,
      backingFormat: string,
      size: ByteSize | undefined
    ): Effect.Effect<void, DiskError>
    createBlank(path: string, size: ByteSize, preallocate: boolean): Effect.Effect<void, DiskError>
    /** Grows the virtual size; callers make sure `size` is larger than the current one. */
    grow(path: string, size: ByteSize): Effect.Effect<void, DiskError>
    /** Runs `qemu-img check` and returns whether the image is consistent. */
    check(path: string): Effect.Effect<boolean, DiskError>
  }
>()("vm-runner/storage/QemuImg") {
  static readonly layer = Layer.effect(
    QemuImg,
    Effect.gen(function* () {
      const exec = yield* Exec
      const run = (operation: string, path: string, argv: ReadonlyArray<string>) =>
        exec
          .run(argv, { failureExitCode: ExitCode.Image, timeout: "10 minutes" })
          .pipe(
            Effect.mapError((error) => new DiskError({ path, operation, detail: error.message }))
          )

      const info = Effect.fn("QemuImg.info")(function* (path: string) {
        // -U (force share) reads the header even while a running QEMU holds the image lock.
        const result = yield* run("read", path, ["qemu-img", "info", "-U", "--output=json", path])
        const parsed = JSON.parse(result.text) as {
          format: string
          "virtual-size": number
          "actual-size"?: number
          "full-backing-filename"?: string
          "backing-filename"?: string
        }
        return {
          format: parsed.format,
          virtualSize: parsed["virtual-size"],
          actualSize: parsed["actual-size"] ?? 0,
          backingFile: parsed["full-backing-filename"] ?? parsed["backing-filename"]
        }
      })

      return QemuImg.of({
        info,
        createOverlay: (path, backing, backingFormat, size) =>
          run("create the overlay", path, [
            "qemu-img",
            "create",
            "-q",
            "-f",
            "qcow2",
            "-o",
            "compat=1.1,lazy_refcounts=on",
            "-b",
            backing,
            "-F",
            backingFormat,
            path,
            ...(size === undefined ? [] : [formatByteSize(size)])
          ]).pipe(Effect.asVoid),
        createBlank: (path, size, preallocate) =>
          run("create", path, [
            "qemu-img",
            "create",
            "-q",
            "-f",
            "qcow2",
            ...(preallocate ? ["-o", "preallocation=falloc"] : []),
            path,
            formatByteSize(size)
          ]).pipe(Effect.asVoid),
        grow: (path, size) =>
          run("resize", path, ["qemu-img", "resize", "-q", path, formatByteSize(size)]).pipe(
            Effect.asVoid
          ),
        check: (path) =>
          exec.run(["qemu-img", "check", "-q", path], { allowFailure: true }).pipe(
            Effect.map((result) => result.exitCode === 0),
            Effect.mapError(
              (error) => new DiskError({ path, operation: "check", detail: error.message })
            )
          )
      })
    })
  )
}
