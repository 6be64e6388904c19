/** A machine and an image cache in memory, standing in for libvirt and downloads. */
import { Effect, Layer, Logger } from "effect"
import { ImageCache, UnusableImage } from "../../../src/images/ImageCache.ts"
import { makeRedfishHandler, type RedfishSettings } from "../../../src/redfish/Handler.ts"
import { SessionStore } from "../../../src/redfish/Sessions.ts"
import {
  type BootOverride,
  type InsertedMedia,
  MachineControl,
  type MachineFacts,
  type PowerState
} from "../../../src/runtime/MachineControl.ts"
import { FailureLimiter } from "../../../src/webconsole/LoginGuard.ts"

export const facts: MachineFacts = {
  name: "testvm",
  uuid: "7a4f1c2e-0000-4000-8000-000000000001",
  cpus: 2,
  memoryMiB: 2048,
  arch: "x86_64",
  machineType: "q35",
  bootMode: "UEFI"
}

export const settings: RedfishSettings = {
  systemId: "system-1",
  username: "admin",
  password: "s3cret-pass",
  version: "0.1.0",
  downloadAttempts: 1
}

export const makeFakeMachine = () => {
  const state = {
    power: "On" as PowerState,
    override: { enabled: "Disabled", target: "None" } as BootOverride,
    media: undefined as InsertedMedia | undefined,
    calls: [] as Array<string>
  }
  const act = (name: string, after: Partial<typeof state> = {}) =>
    Effect.sync(() => {
      state.calls.push(name)
      Object.assign(state, after)
    })
  const machine = MachineControl.of({
    facts,
    powerState: () => Effect.sync(() => state.power),
    powerOn: () => act("powerOn", { power: "On" }),
    forceOff: () => act("forceOff", { power: "Off" }),
    gracefulShutdown: () => act("gracefulShutdown"),
    forceRestart: () => act("forceRestart"),
    gracefulRestart: () => act("gracefulRestart"),
    bootOverride: () => Effect.sync(() => state.override),
    setBootOverride: (override) =>
      act(`setBootOverride ${override.enabled} ${override.target}`, { override }),
    media: () => Effect.sync(() => state.media),
    insertMedia: (media) => act(`insertMedia ${media.path}`, { media }),
    ejectMedia: () => act("ejectMedia", { media: undefined })
  })
  return { state, machine }
}

/**
 * Resolves `.iso` URLs to an ISO in the cache, `.qcow2` URLs to a disk image, and fails for
 * any other URL, as an unreachable server would.
 */
export const fakeImageCache = ImageCache.of({
  resolveCatalogueImage: () => Effect.die("not used"),
  resolveBootSource: (from) => {
    const url = from._tag === "Url" ? from.url : ""
    if (url.endsWith(".iso")) {
      return Effect.succeed({
        _tag: "Iso",
        path: "/data/base/media.iso",
        fromCache: false,
        digestChecked: false
      } as const)
    }
    if (url.endsWith(".qcow2")) {
      return Effect.succeed({
        _tag: "DiskImage",
        path: "/data/base/disk.qcow2",
        format: "qcow2",
        fromCache: false,
        digestChecked: false
      } as const)
    }
    return Effect.fail(new UnusableImage({ source: url, reason: "connection refused" }))
  }
})

/** A handler over a fake machine; `request` runs one request and returns the reply. */
const basicAuth = `Basic ${btoa(`${settings.username}:${settings.password}`)}`

export const makeService = () => {
  const fake = makeFakeMachine()
  const handle = makeRedfishHandler(settings, new SessionStore(), new FailureLimiter())
  const layer = Layer.mergeAll(
    Layer.succeed(MachineControl, fake.machine),
    Layer.succeed(ImageCache, fakeImageCache),
    // The handler logs every login failure and power action; tests check replies instead.
    Logger.layer([])
  )
  const request = (
    method: string,
    path: string,
    options: { body?: unknown; headers?: Record<string, string>; auth?: boolean } = {}
  ) => {
    const headers: Record<string, string> = {
      ...(options.auth === false ? {} : { authorization: basicAuth }),
      ...options.headers
    }
    const lower = Object.fromEntries(
      Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value])
    )
    return Effect.runPromise(
      handle({
        method,
        path,
        header: (name) => lower[name.toLowerCase()] ?? null,
        body: options.body === undefined ? "" : JSON.stringify(options.body)
      }).pipe(Effect.provide(layer))
    )
  }
  return { ...fake, request }
}
