import { Effect, Layer } from "effect"
import { Seed } from "../cloudinit/Seed.ts"
import type { Resolved } from "../config/Resolve.ts"
import { Libvirt } from "../libvirt/Libvirt.ts"
import { Exec } from "../process/Exec.ts"
import { runVm } from "../runtime/Launcher.ts"
import { QemuImg } from "../storage/QemuImg.ts"

/** Services the main job uses, over the platform layer the entry point provides. */
export const runtimeLayer = (libvirtUri: string) =>
  Layer.mergeAll(Libvirt.layer(libvirtUri), QemuImg.layer, Seed.layer).pipe(
    Layer.provideMerge(Exec.layer)
  )

export const runCommand = (resolved: Resolved, noConsole: boolean) =>
  runVm(resolved, noConsole).pipe(Effect.provide(runtimeLayer(resolved.config.runtime.libvirtUri)))
