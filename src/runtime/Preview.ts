import { existsSync } from "node:fs"
import { Effect } from "effect"
import type { Resolved } from "../config/Resolve.ts"
import { GiB, humanByteSize } from "../domain/ByteSize.ts"
import type { VmConfig } from "../domain/Config.ts"
import { type Layout, makeLayout } from "../domain/Layout.ts"
import { qemuBinary } from "../host/Accelerator.ts"
import { liveHostFacts } from "../host/HostFacts.ts"
import {
  detectFormat,
  type ImageFormat,
  isArchive,
  isCompression,
  isDiskFormat
} from "../images/Detect.ts"
import { readSample } from "../images/Files.ts"
import { Libvirt } from "../libvirt/Libvirt.ts"
import { QemuImg } from "../storage/QemuImg.ts"
import { collectHostChecks, runningLeftover } from "./HostChecks.ts"
import { planDomainXml } from "./MachineControl.ts"
import type { BaseImage, LaunchPlan } from "./Plan.ts"
import { checkHost, gatherFacts, makePlan } from "./Prepare.ts"
import { vmDirInUse } from "./VmLock.ts"

/** One environment check of `--dry-run`. */
export interface Check {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
}

export interface Preview {
  readonly plan: LaunchPlan
  readonly xml: string
  readonly checks: ReadonlyArray<Check>
  readonly imageSummary: string
}

/** Free space below which `--dry-run` reports the data directory as too small. */
export const minimumFreeSpace = 2 * GiB

const onPath = (command: string): boolean =>
  (process.env.PATH ?? "/usr/bin:/bin").split(":").some((dir) => existsSync(`${dir}/${command}`))

const toolChecks = (config: VmConfig): Array<Check> => {
  const needed: Array<[string, ReadonlyArray<string>, string]> = [
    ["virsh", ["virsh"], "libvirt-clients"],
    ["qemu-img", ["qemu-img"], "qemu-utils"],
    [
      "QEMU",
      [qemuBinary(config.arch)],
      config.arch === "x86_64" ? "qemu-system-x86" : "qemu-system-arm"
    ]
  ]
  if (config.cloudInit.enabled) {
    needed.push([
      "seed ISO writer",
      ["genisoimage", "xorriso", "mkisofs"],
      "genisoimage or xorriso"
    ])
  }
  if (config.boot.tpm) needed.push(["TPM emulator", ["swtpm"], "swtpm and swtpm-tools"])
  return needed.map(([name, commands, packageName]) => {
    const found = commands.find(onPath)
    return {
      name,
      ok: found !== undefined,
      detail:
        found === undefined ? `${commands.join(" or ")} not found; install ${packageName}` : found
    }
  })
}

/** Describes the base image without fetching it. */
const previewBase = (config: VmConfig) =>
  Effect.gen(function* () {
    const from = config.boot.from
    const catalogue: BaseImage = {
      _tag: "Image",
      path: config.distro.url,
      format: "qcow2",
      virtualSize: 0
    }
    if (from._tag === "Blank")
      return { base: { _tag: "Blank" } as BaseImage, installIso: undefined, summary: "blank disk" }
    if (from._tag === "Catalogue") {
      return {
        base: catalogue,
        installIso: undefined,
        summary: `${config.distro.key} from ${config.distro.url} (cached copies are reused)`
      }
    }
    const location = from._tag === "Url" ? from.url : from.path
    if (from.hint === "iso") {
      const base = config.boot.blankDisk ? ({ _tag: "Blank" } as BaseImage) : catalogue
      return { base, installIso: location, summary: `installer ISO ${location}` }
    }
    if (from._tag === "Path") {
      const qemuImg = yield* QemuImg
      const info = yield* qemuImg.info(from.path).pipe(Effect.orElseSucceed(() => undefined))
      const detected = yield* readSample(from.path).pipe(
        Effect.map(detectFormat),
        Effect.orElseSucceed(() => undefined)
      )
      const base: BaseImage = {
        _tag: "Image",
        path: from.path,
        format: "qcow2",
        virtualSize: info?.virtualSize ?? 0
      }
      return {
        base,
        installIso: undefined,
        summary: `${from.path} (${describeSource(detected?.format)})`
      }
    }
    return {
      base: { _tag: "Image", path: from.url, format: "qcow2", virtualSize: 0 } as BaseImage,
      installIso: undefined,
      summary: `${from.url} (downloaded, checked and unpacked or converted at run time)`
    }
  })

/** Describes what the run does with a local boot source of the detected format. */
const describeSource = (format: ImageFormat | undefined): string => {
  if (format === undefined) return "format checked at run time"
  if (format === "qcow2") return "qcow2, used as the base image"
  if (format === "iso") return "ISO 9660 by content: attached as an installer CD-ROM"
  if (isCompression(format) || isArchive(format)) {
    return `${format} archive: unpacked into the image cache at run time`
  }
  if (isDiskFormat(format)) return `${format}: converted to qcow2 in the image cache at run time`
  return `${format}: not a disk image, the run stops`
}

const lockCheck = (layout: Layout) =>
  Effect.gen(function* () {
    const free: Check = { name: "VM directory", ok: true, detail: `${layout.vmDir} is free` }
    if (!existsSync(layout.lockFile)) return free
    const busy = yield* vmDirInUse(layout).pipe(Effect.orElseSucceed(() => false))
    return busy
      ? { name: "VM directory", ok: false, detail: `another vm-runner is using ${layout.vmDir}` }
      : free
  })

/**
 * Works out the launch and checks the host without changing anything: the XML it shows is
 * the one the run would define, given the same images.
 */
export const previewLaunch = (resolved: Resolved) =>
  Effect.gen(function* () {
    const { config } = resolved
    const libvirt = yield* Libvirt
    const layout = makeLayout(config.data.root, config.name)
    const checks: Array<Check> = []

    const reachable = yield* libvirt.ping()
    const startable =
      config.runtime.libvirtUri === "qemu:///system" && existsSync("/usr/sbin/libvirtd")
    checks.push({
      name: "libvirt",
      ok: reachable || startable,
      detail: reachable
        ? `answers at ${config.runtime.libvirtUri}`
        : startable
          ? "not running; the run starts virtlogd and libvirtd"
          : `nothing answers at ${config.runtime.libvirtUri}`
    })
    const images = yield* previewBase(config)
    const facts = yield* gatherFacts(config, layout, images, true)
    const kvmOk = facts.accelerator.accel === "kvm" || !config.runtime.requireKvm
    checks.push({
      name: "KVM",
      ok: kvmOk,
      detail: `${facts.accelerator.accel} (${facts.accelerator.reason})${kvmOk ? "" : "; REQUIRE_KVM=1 stops the run"}`
    })
    const plan = makePlan(config, layout, facts)
    for (const problem of checkHost(plan))
      checks.push({ name: "files", ok: false, detail: problem })
    checks.push(...toolChecks(config))
    // The checks the run makes before it defines anything. A running domain of this name
    // occupies its ports. They count as free only when the run would replace that domain,
    // that is when no other vm-runner has the VM directory locked.
    const lock = yield* lockCheck(layout)
    const leftover = lock.ok ? yield* runningLeftover(config.name) : undefined
    const host = yield* collectHostChecks(plan, leftover)
    checks.push(...host.checks)
    checks.push(lock)
    if (!config.runtime.persist && existsSync(`${layout.vmDir}/.persistent`)) {
      checks.push({
        name: "persistence",
        ok: false,
        detail: `${layout.vmDir} holds a persistent disk and PERSIST is off; set PERSIST=1`
      })
    }
    const free = liveHostFacts.freeBytes(layout.vmDir) ?? 0
    checks.push({
      name: "free space",
      ok: free >= minimumFreeSpace,
      detail: `${humanByteSize(free)} free for ${config.data.root}${free >= minimumFreeSpace ? "" : ` (at least ${humanByteSize(minimumFreeSpace)} needed)`}`
    })
    return {
      plan: { ...plan, warnings: [...plan.warnings, ...host.warnings] },
      xml: planDomainXml(plan),
      checks,
      imageSummary: images.summary
    } satisfies Preview
  })
