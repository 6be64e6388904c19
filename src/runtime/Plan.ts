import type { SeedFiles } from "../cloudinit/Seed.ts"
import { type ByteSize, formatByteSize, humanByteSize } from "../domain/ByteSize.ts"
import type { DiskCache, DiskIo, VmConfig } from "../domain/Config.ts"
import type { Layout } from "../domain/Layout.ts"
import type { AcceleratorChoice } from "../host/Accelerator.ts"
import type { DomainInputs, HostCpu } from "../libvirt/DomainInputs.ts"
import { firmwareFor } from "./Facts.ts"

/** The source of the work disk's content. */
export type BaseImage =
  | {
      readonly _tag: "Image"
      readonly path: string
      readonly format: string
      readonly virtualSize: number
    }
  | { readonly _tag: "Blank" }

/** A disk that already exists in the VM directory from an earlier persistent run. */
export interface ExistingDisk {
  readonly virtualSize: number
}

/** Everything measured on the host and in the VM directory before planning. */
export interface LaunchFacts {
  readonly accelerator: AcceleratorChoice
  readonly passt: boolean
  readonly virtiofsReadonly: boolean
  readonly hostCpu: HostCpu
  readonly directIo: boolean
  readonly filesystem: string
  readonly virtiofsd: string | undefined
  readonly virtiofsSandbox: "namespace" | "chroot"
  readonly renderNode: string | undefined
  readonly blockSectorSizes: ReadonlyMap<string, number>
  readonly base: BaseImage
  /** ISO from BOOT_FROM, after the image layer checked its content. */
  readonly installIso: string | undefined
  readonly existingWorkDisk: ExistingDisk | undefined
  readonly existingExtraDisks: ReadonlySet<number>
  readonly installed: boolean
  readonly uuid: string
}

export type DiskAction =
  | { readonly _tag: "Reuse"; readonly growTo: ByteSize | undefined }
  | {
      readonly _tag: "Overlay"
      readonly backing: string
      readonly backingFormat: string
      readonly size: ByteSize | undefined
    }
  | { readonly _tag: "Blank"; readonly size: ByteSize; readonly preallocate: boolean }

export interface PlannedDisk {
  readonly path: string
  readonly action: DiskAction
}

/** Warns about device settings this host cannot honour, which the domain then leaves out. */
export const droppedDeviceWarnings = (
  config: VmConfig,
  facts: Pick<LaunchFacts, "accelerator" | "renderNode">
): Array<string> => {
  const warnings: Array<string> = []
  if (config.devices.gpu === "intel" && facts.renderNode === undefined) {
    warnings.push(
      "GPU=intel: no render node under /dev/dri, so the guest gets a GPU without 3D " +
        "acceleration; pass the host's /dev/dri to the container (--device /dev/dri)"
    )
  }
  if (config.devices.hyperv && config.arch === "x86_64" && facts.accelerator.accel !== "kvm") {
    warnings.push("HYPERV=1: Hyper-V enlightenments need KVM, so this TCG guest runs without them")
  }
  return warnings
}

/** The whole launch worked out before anything is written: disks, seed, domain. */
export interface LaunchPlan {
  readonly config: VmConfig
  readonly layout: Layout
  readonly workDisk: PlannedDisk
  readonly extraDisks: ReadonlyArray<PlannedDisk & { readonly index: number }>
  readonly seed: SeedFiles | undefined
  readonly installIso: string | undefined
  readonly domain: DomainInputs
  readonly notes: ReadonlyArray<string>
  readonly warnings: ReadonlyArray<string>
}

/**
 * Picks the disk I/O settings the VM directory's filesystem supports. Without O_DIRECT
 * (ecryptfs, ramfs, tmpfs before Linux 6.6, some overlay and FUSE filesystems), QEMU cannot
 * open a disk with cache=none or directsync, nor use io=native, so those fall back to
 * writeback and threads; io_uring works without O_DIRECT and stays.
 */
export const effectiveDiskIo = (
  config: VmConfig,
  directIo: boolean,
  filesystem: string,
  warnings: Array<string>
): { io: DiskIo; cache: DiskCache } => {
  const { io, cache } = config.storage
  if (directIo || (cache !== "none" && cache !== "directsync")) return { io, cache }
  const fallbackIo: DiskIo = io === "native" ? "threads" : io
  warnings.push(
    `the VM directory is on ${filesystem}, which does not support O_DIRECT: using ` +
      `DISK_CACHE=writeback and DISK_IO=${fallbackIo} instead of ${cache}/${io}`
  )
  return { io: fallbackIo, cache: "writeback" }
}

const planWorkDisk = (
  config: VmConfig,
  layout: Layout,
  facts: LaunchFacts,
  notes: Array<string>,
  warnings: Array<string>
): PlannedDisk => {
  const wanted = config.storage.diskSize
  const existing = config.runtime.persist ? facts.existingWorkDisk : undefined
  if (existing !== undefined) {
    if (wanted > existing.virtualSize) {
      notes.push(
        `growing the persistent disk from ${humanByteSize(existing.virtualSize)} to ${formatByteSize(wanted)}`
      )
      return { path: layout.workDisk, action: { _tag: "Reuse", growTo: wanted } }
    }
    if (wanted < existing.virtualSize) {
      warnings.push(
        `DISK_SIZE=${formatByteSize(wanted)} is smaller than the persistent disk ` +
          `(${humanByteSize(existing.virtualSize)}); disks are never shrunk, so it stays as it is`
      )
    }
    return { path: layout.workDisk, action: { _tag: "Reuse", growTo: undefined } }
  }
  if (facts.base._tag === "Blank") {
    return {
      path: layout.workDisk,
      action: { _tag: "Blank", size: wanted, preallocate: config.storage.preallocate }
    }
  }
  const base = facts.base
  if (wanted < base.virtualSize) {
    notes.push(
      `the image is already ${humanByteSize(base.virtualSize)}, larger than DISK_SIZE=` +
        `${formatByteSize(wanted)}; keeping the image's size`
    )
  }
  return {
    path: layout.workDisk,
    action: {
      _tag: "Overlay",
      backing: base.path,
      backingFormat: base.format,
      size: wanted > base.virtualSize ? wanted : undefined
    }
  }
}

/** Works out the launch from the configuration and measured facts; writes nothing. */
export const planLaunch = (
  config: VmConfig,
  layout: Layout,
  facts: LaunchFacts,
  seed: SeedFiles | undefined
): LaunchPlan => {
  const notes: Array<string> = []
  const warnings: Array<string> = []
  const workDisk = planWorkDisk(config, layout, facts, notes, warnings)
  const extraDisks = config.storage.extraDisks.map((disk) => ({
    index: disk.index,
    path: layout.extraDisk(disk.index),
    action:
      config.runtime.persist && facts.existingExtraDisks.has(disk.index)
        ? ({ _tag: "Reuse", growTo: undefined } as const)
        : ({ _tag: "Blank", size: disk.size, preallocate: config.storage.preallocate } as const)
  }))

  let installIso = facts.installIso
  if (installIso === undefined && config.boot.order.includes("cdrom")) {
    notes.push("BOOT_ORDER lists cdrom, but BOOT_FROM is not an ISO, so no CD-ROM is attached")
  }
  if (
    installIso !== undefined &&
    facts.installed &&
    workDisk.action._tag === "Reuse" &&
    !config.boot.forceIso
  ) {
    notes.push(
      "the persistent disk has an installed system, so the ISO is not attached (FORCE_ISO=1 attaches it)"
    )
    installIso = undefined
  }
  const order =
    installIso === undefined
      ? config.boot.order.filter((device) => device !== "cdrom")
      : config.boot.order
  const bootOrder =
    order.length === 0 || (installIso === undefined && !order.includes("hd"))
      ? ["hd" as const, ...order]
      : order

  const { io, cache } = effectiveDiskIo(config, facts.directIo, facts.filesystem, warnings)
  warnings.push(...droppedDeviceWarnings(config, facts))
  const domain: DomainInputs = {
    config: { ...config, boot: { ...config.boot, order: bootOrder } },
    uuid: facts.uuid,
    accel: facts.accelerator.accel,
    workDisk: { path: workDisk.path, format: "qcow2" },
    extraDisks: extraDisks.map((disk) => ({ index: disk.index, path: disk.path })),
    seedIso: seed === undefined ? undefined : layout.seedIso,
    installIso,
    diskIo: io,
    diskCache: cache,
    firmware: firmwareFor(config.arch, config.boot.mode, layout.nvram),
    passt: facts.passt,
    virtiofsReadonly: facts.virtiofsReadonly,
    hostCpu: facts.hostCpu,
    blockSectorSizes: facts.blockSectorSizes,
    serialLog: layout.serialLog,
    virtiofsd: facts.virtiofsd,
    virtiofsSandbox: facts.virtiofsSandbox,
    renderNode: config.devices.gpu === "intel" ? facts.renderNode : undefined
  }
  return { config, layout, workDisk, extraDisks, seed, installIso, domain, notes, warnings }
}
