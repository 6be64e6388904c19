/**
 * Child process for the SIGTERM test: downloads argv[2] to argv[3] under BunRuntime.runMain,
 * which interrupts the download on SIGTERM as the real program does.
 */
import { BunRuntime } from "@effect/platform-bun"
import { Effect, Layer } from "effect"
import { Downloader } from "../../../src/images/Downloader.ts"
import { Progress } from "../../../src/images/Progress.ts"

const [url, destination] = process.argv.slice(2)
const program = Downloader.use((downloader) =>
  downloader.download({ url: url!, destination: destination!, label: "base image", attempts: 1 })
)
BunRuntime.runMain(
  program.pipe(Effect.provide(Downloader.layer.pipe(Layer.provide(Progress.layerSilent))))
)
