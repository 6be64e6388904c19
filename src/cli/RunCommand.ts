import { Effect, Layer } from "effect"
import { Seed } from "../cloudinit/Seed.ts"
import type { LoadedCatalogue } from "../config/LoadConfig.ts"
import { type Resolved, resolveConfig } from "../config/Resolve.ts"
import { liveHostFacts } from "../host/HostFacts.ts"
import { Downloader } from "../images/Downloader.ts"
import { FileLock } from "../images/FileLock.ts"
import { ImageCache } from "../images/ImageCache.ts"
import { Progress } from "../images/Progress.ts"
import { Libvirt } from "../libvirt/Libvirt.ts"
import { Exec } from "../process/Exec.ts"
import { runVm } from "../runtime/Launcher.ts"
import { QemuImg } from "../storage/QemuImg.ts"

/** Services the main job uses, over the platform layer the entry point provides. */
export const runtimeLayer = (libvirtUri: string, dataRoot: string) =>
  Layer.mergeAll(
    Libvirt.layer(libvirtUri),
    QemuImg.layer,
    Seed.layer,
    ImageCache.layer(dataRoot).pipe(
      Layer.provide(Downloader.layer.pipe(Layer.provide(Progress.layer)))
    )
  ).pipe(Layer.provideMerge(Layer.mergeAll(Exec.layer, FileLock.layer)))

/** libvirt alone, for commands that only query a running domain. */
export const libvirtLayer = (libvirtUri: string) =>
  Libvirt.layer(libvirtUri).pipe(Layer.provideMerge(Exec.layer))

/** The main job for a loaded configuration. */
export const runCommand = (loaded: Resolved & LoadedCatalogue, noConsole: boolean) => {
  const resolveAsIso = () =>
    Effect.fromResult(
      resolveConfig({
        env: process.env,
        host: liveHostFacts,
        catalogue: loaded.catalogue,
        catalogueSource: loaded.source,
        isoByContent: true
      })
    )
  const { config } = loaded
  return runVm(loaded, noConsole, resolveAsIso).pipe(
    Effect.provide(runtimeLayer(config.runtime.libvirtUri, config.data.root))
  )
}
