import { renameSync, writeFileSync } from "node:fs"
import { Context, Duration, Effect, Layer, Ref, Semaphore } from "effect"
import type { BootDevice } from "../domain/Config.ts"
import { buildDomain, renderDomainXml } from "../libvirt/BuildDomain.ts"
import { cdromBus } from "../libvirt/builders/Cdroms.ts"
import { buildControllers } from "../libvirt/builders/Controllers.ts"
import { assignDiskTargets, type PendingDisk } from "../libvirt/builders/DiskTargets.ts"
import type { DomainInputs } from "../libvirt/DomainInputs.ts"
import type { Domain, DomainDeviceBoot } from "../libvirt/DomainModel.ts"
import { serializeDomain } from "../libvirt/DomainXml.ts"
import { type DomainState, Libvirt, type LibvirtError } from "../libvirt/Libvirt.ts"
import { waitForPowerOff } from "./Lifecycle.ts"
import type { LaunchPlan } from "./Plan.ts"

/** Power states as Redfish names them (Resource.PowerState). */
export type PowerState = "On" | "Off" | "PoweringOff"

/** Boot devices a one-time or continuous override can pick (BootSourceOverrideTarget). */
export type BootTarget = "None" | "Pxe" | "Cd" | "Hdd"
export const bootTargets: ReadonlyArray<BootTarget> = ["None", "Pxe", "Cd", "Hdd"]

export type BootOverrideEnabled = "Disabled" | "Once" | "Continuous"
export const bootOverrideModes: ReadonlyArray<BootOverrideEnabled> = [
  "Disabled",
  "Once",
  "Continuous"
]

export interface BootOverride {
  readonly enabled: BootOverrideEnabled
  readonly target: BootTarget
}

/** An ISO in the virtual media drive: the URL a client gave and the local copy attached. */
export interface InsertedMedia {
  readonly image: string
  readonly path: string
}

/** Facts about the virtual machine, for the Redfish resources that describe it. */
export interface MachineFacts {
  readonly name: string
  readonly uuid: string
  readonly cpus: number
  readonly memoryMiB: number
  readonly arch: string
  readonly machineType: string
  readonly bootMode: "UEFI" | "Legacy"
}

/**
 * The machine operations a BMC offers, on the one domain of this run. Power-on redefines the
 * domain from the launch plan first, so a boot override and the inserted media take effect.
 */
export class MachineControl extends Context.Service<
  MachineControl,
  {
    readonly facts: MachineFacts
    powerState(): Effect.Effect<PowerState, LibvirtError>
    /** Starts the domain (`virsh start`); does nothing when it runs. */
    powerOn(): Effect.Effect<void, LibvirtError>
    /** Stops the domain at once (`virsh destroy`), like pulling the plug. */
    forceOff(): Effect.Effect<void, LibvirtError>
    /** Presses the ACPI power button; the guest decides whether to power off. */
    gracefulShutdown(): Effect.Effect<void, LibvirtError>
    /** Resets the machine, or power-cycles it when a boot override waits for the next boot. */
    forceRestart(): Effect.Effect<void, LibvirtError>
    /**
     * Asks the guest to reboot through ACPI. With a boot override waiting, asks it to power off
     * instead and powers it on once it has, in the background.
     */
    gracefulRestart(): Effect.Effect<void, LibvirtError>
    bootOverride(): Effect.Effect<BootOverride>
    /** Records the override; it applies when the domain next starts. */
    setBootOverride(override: BootOverride): Effect.Effect<void>
    media(): Effect.Effect<InsertedMedia | undefined>
    /** Puts a local ISO in the virtual media drive, live when the domain runs. */
    insertMedia(media: InsertedMedia): Effect.Effect<void, LibvirtError>
    ejectMedia(): Effect.Effect<void, LibvirtError>
  }
>()("vm-runner/runtime/MachineControl") {
  static readonly layer = (plan: LaunchPlan) =>
    Layer.effect(MachineControl, makeMachineControl(plan))
}

/** Maps a libvirt domain state to a Redfish power state. A missing domain is off. */
export const powerStateOf = (state: DomainState | undefined): PowerState => {
  switch (state) {
    case "running":
    case "paused":
    case "blocked":
    case "idle":
      return "On"
    case "in shutdown":
      return "PoweringOff"
    default:
      return "Off"
  }
}

/** `BOOT_ORDER` with the override's device moved to the front. */
const overrideOrder = (
  order: ReadonlyArray<BootDevice>,
  target: BootTarget
): ReadonlyArray<BootDevice> => {
  const firstDevice: Partial<Record<BootTarget, BootDevice>> = { Pxe: "network", Hdd: "hd" }
  const first = firstDevice[target]
  if (first === undefined) return order
  return [first, ...order.filter((device) => device !== first)]
}

const shifted = (boot: DomainDeviceBoot | undefined): DomainDeviceBoot | undefined =>
  boot === undefined ? undefined : { order: boot.order + 1 }

/**
 * Moves a `-device` argument in JSON form one place down the boot order. Slirp NICs and NVMe
 * disks are such arguments, and their `bootindex` shares its numbers with libvirt's
 * `<boot order>`.
 */
const shiftedBootIndex = (arg: string): string => {
  if (!arg.startsWith("{")) return arg
  try {
    const device = JSON.parse(arg) as Record<string, unknown>
    if (typeof device.bootindex !== "number") return arg
    return JSON.stringify({ ...device, bootindex: device.bootindex + 1 })
  } catch {
    return arg
  }
}

/**
 * Builds the domain of a machine with a BMC: the launch plan's domain plus a virtual media
 * CD-ROM drive, empty or holding `mediaPath`, with `bootTarget` first in the boot order.
 * `Pxe` and `Hdd` reorder `BOOT_ORDER`; `Cd` puts the virtual media drive before every
 * other device.
 *
 * NOTE: a `bootindex` in an `EXTRA_ARGS` device written as options (not JSON) is not moved,
 * so with `Cd` it may clash with the drive's.
 */
export const bmcDomain = (
  inputs: DomainInputs,
  bootTarget: BootTarget | undefined,
  mediaPath: string | undefined
): Domain => {
  const target = bootTarget ?? "None"
  const boot = inputs.config.boot
  const reordered: DomainInputs = {
    ...inputs,
    config: { ...inputs.config, boot: { ...boot, order: overrideOrder(boot.order, target) } }
  }
  const domain = buildDomain(reordered)
  const cdFirst = target === "Cd"
  const pending: Array<PendingDisk> = domain.devices.disks.map(
    ({ target: diskTarget, address: _address, ...disk }) => ({
      ...disk,
      bus: diskTarget.bus,
      boot: cdFirst ? shifted(disk.boot) : disk.boot
    })
  )
  pending.push({
    type: "file",
    device: "cdrom",
    driver: { name: "qemu", type: "raw" },
    // NOTE: libvirt (checked with 9.0) reads an empty `file` as a drive without a medium.
    source: { file: mediaPath ?? "" },
    bus: cdromBus(boot.machine),
    boot: cdFirst ? { order: 1 } : undefined,
    readonly: true
  })
  const disks = assignDiskTargets(pending)
  const interfaces = domain.devices.interfaces.map((nic) =>
    cdFirst ? { ...nic, boot: shifted(nic.boot) } : nic
  )
  const commandline = domain.qemuCommandline
  return {
    ...domain,
    qemuCommandline:
      cdFirst && commandline !== undefined
        ? { args: commandline.args.map(shiftedBootIndex) }
        : commandline,
    devices: {
      ...domain.devices,
      disks,
      interfaces,
      controllers: buildControllers(reordered, disks)
    }
  }
}

/** Returns the target name (`sdc`, `hdc`) of the virtual media drive, the last CD-ROM. */
export const mediaDriveTarget = (domain: Domain): string => {
  const drive = domain.devices.disks.filter((disk) => disk.device === "cdrom").at(-1)
  if (drive === undefined) throw new Error("the BMC domain has no virtual media drive")
  return drive.target.dev
}

const writeAtomically = (path: string, text: string) => {
  writeFileSync(`${path}.tmp`, text)
  renameSync(`${path}.tmp`, path)
}

/**
 * Writes the domain XML of a machine with a BMC over the plan's, before the first define, so
 * the guest has its virtual media drive from the first boot.
 */
/**
 * The domain XML a plan defines: with Redfish on, the BMC's shape with its always-present
 * CD-ROM drive, so `--show-xml` and the run agree.
 */
export const planDomainXml = (plan: LaunchPlan): string =>
  plan.config.redfish.enabled
    ? serializeDomain(bmcDomain(plan.domain, undefined, undefined))
    : renderDomainXml(plan.domain)

const noOverride: BootOverride = { enabled: "Disabled", target: "None" }

const factsOf = (plan: LaunchPlan): MachineFacts => ({
  name: plan.config.name,
  uuid: plan.domain.uuid,
  cpus: plan.config.cpus,
  memoryMiB: plan.config.memoryMiB,
  arch: plan.config.arch,
  machineType: plan.config.boot.machine,
  bootMode: plan.domain.firmware === undefined ? "Legacy" : "UEFI"
})

const makeMachineControl = (plan: LaunchPlan) =>
  Effect.gen(function* () {
    const libvirt = yield* Libvirt
    const scope = yield* Effect.scope
    const name = plan.config.name
    const driveTarget = mediaDriveTarget(bmcDomain(plan.domain, undefined, undefined))
    const override = yield* Ref.make<BootOverride>(noOverride)
    const inserted = yield* Ref.make<InsertedMedia | undefined>(undefined)
    // One power or media operation at a time: each reads the state, then changes it.
    const lock = Semaphore.makeUnsafe(1)
    const serialized = lock.withPermits(1)

    const powerState = () => libvirt.state(name).pipe(Effect.map(powerStateOf))

    const define = (target: BootTarget | undefined) =>
      Effect.gen(function* () {
        const media = yield* Ref.get(inserted)
        const domain = bmcDomain(plan.domain, target, media?.path)
        writeAtomically(plan.layout.domainXml, serializeDomain(domain))
        yield* libvirt.define(plan.layout.domainXml, name)
      })

    const start = Effect.gen(function* () {
      if ((yield* powerState()) !== "Off") return
      const pending = yield* Ref.get(override)
      const target = pending.enabled === "Disabled" ? undefined : pending.target
      yield* define(target)
      yield* libvirt.start(name)
      if (pending.enabled === "Once") {
        // Once means the next boot only: libvirt keeps the running domain as started and
        // applies this definition at the start after.
        yield* Ref.set(override, noOverride)
        yield* define(undefined)
      }
      const how = target === undefined ? "" : ` (boot override ${pending.enabled} ${target})`
      yield* Effect.logInfo(`powered the guest on${how}`)
    })

    const overridePending = Ref.get(override).pipe(
      Effect.map((current) => current.enabled !== "Disabled" && current.target !== "None")
    )

    const destroy = libvirt.destroy(name).pipe(Effect.tap(() => Effect.logInfo("forced off")))

    /** Powers on once the guest has powered itself off, or gives up after the timeout. */
    const startAfterPowerOff = waitForPowerOff(name).pipe(
      Effect.timeoutOption(Duration.seconds(plan.config.runtime.shutdownTimeout)),
      Effect.flatMap((outcome) =>
        outcome._tag === "Some"
          ? serialized(start)
          : Effect.logWarning(
              `the guest did not power off within ${plan.config.runtime.shutdownTimeout} s of ` +
                "the graceful restart; it stays on, and the boot override waits"
            )
      ),
      Effect.catch((error) => Effect.logWarning(`graceful restart failed: ${error.message}`)),
      Effect.provideService(Libvirt, libvirt)
    )

    const gracefulRestart = Effect.gen(function* () {
      if ((yield* powerState()) === "Off") return yield* start
      if (yield* overridePending) {
        yield* libvirt.shutdown(name, "acpi")
        yield* Effect.logInfo("asked the guest to power off; it powers on again once it has")
        yield* Effect.forkIn(startAfterPowerOff, scope)
        return
      }
      yield* libvirt.virsh("reboot", name, ["reboot", name, "--mode", "acpi"])
      yield* Effect.logInfo("asked the guest to reboot (ACPI)")
    })

    const forceRestart = Effect.gen(function* () {
      if ((yield* powerState()) === "Off") return yield* start
      if (yield* overridePending) {
        yield* destroy
        return yield* start
      }
      yield* libvirt.virsh("reset", name, ["reset", name])
      yield* Effect.logInfo("reset the guest")
    })

    const changeMedia = (args: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        const running = (yield* powerState()) !== "Off"
        const scopeFlags = running ? ["--live", "--config"] : ["--config"]
        yield* libvirt.virsh("change the virtual media", name, [
          "change-media",
          name,
          driveTarget,
          ...args,
          ...scopeFlags
        ])
      })

    return MachineControl.of({
      facts: factsOf(plan),
      powerState,
      powerOn: () => serialized(start),
      forceOff: () =>
        serialized(
          Effect.gen(function* () {
            if ((yield* powerState()) !== "Off") yield* destroy
          })
        ),
      gracefulShutdown: () =>
        serialized(
          Effect.gen(function* () {
            if ((yield* powerState()) === "Off") return
            yield* libvirt.shutdown(name, "acpi")
            yield* Effect.logInfo("pressed the ACPI power button")
          })
        ),
      forceRestart: () => serialized(forceRestart),
      gracefulRestart: () => serialized(gracefulRestart),
      bootOverride: () => Ref.get(override),
      setBootOverride: (next) =>
        Ref.set(override, next).pipe(
          Effect.tap(() =>
            Effect.logInfo(`boot override set to ${next.enabled} ${next.target} (next power-on)`)
          )
        ),
      media: () => Ref.get(inserted),
      insertMedia: (media) =>
        serialized(
          Effect.gen(function* () {
            yield* changeMedia([media.path, "--update", "--force"])
            yield* Ref.set(inserted, media)
            yield* Effect.logInfo(`inserted virtual media ${media.image}`)
          })
        ),
      ejectMedia: () =>
        serialized(
          Effect.gen(function* () {
            if ((yield* Ref.get(inserted)) === undefined) return
            yield* changeMedia(["--eject", "--force"])
            yield* Ref.set(inserted, undefined)
            yield* Effect.logInfo("ejected the virtual media")
          })
        )
    })
  })
