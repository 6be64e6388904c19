import { createHash } from "node:crypto"
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync
} from "node:fs"
import { dirname, join } from "node:path"
import { Data, Effect } from "effect"
import { renderSeedFiles, Seed } from "../cloudinit/Seed.ts"
import type { FilesystemShare, VmConfig } from "../domain/Config.ts"
import { ExitCode } from "../domain/ExitCode.ts"
import type { Layout } from "../domain/Layout.ts"
import { chooseAcceleratorCached } from "../host/Accelerator.ts"
import { type ContainerEngine, detectContainerRuntime } from "../host/ContainerRuntime.ts"
import { Libvirt } from "../libvirt/Libvirt.ts"
import { Exec } from "../process/Exec.ts"
import { filesystemName, supportsDirectIo } from "../storage/DirectIo.ts"
import { QemuImg } from "../storage/QemuImg.ts"
import {
  findRenderNode,
  findVirtiofsd,
  firmwareFor,
  logicalSectorSize,
  missingFirmware,
  readHostCpu,
  supportsPasst
} from "./Facts.ts"
import { planDomainXml } from "./MachineControl.ts"
import type { BaseImage, LaunchFacts, LaunchPlan, PlannedDisk } from "./Plan.ts"
import { planLaunch } from "./Plan.ts"
import { runRecordDir } from "./RunRecord.ts"
import { blockedDirectory, libvirtTpmStateDir, resolveAccount, swtpmUserOf } from "./TpmState.ts"

export class EnvironmentError extends Data.TaggedError("EnvironmentError")<{
  readonly detail: string
}> {
  readonly exitCode = ExitCode.Environment
  override get message(): string {
    return this.detail
  }
}

/**
 * Derives a new VM's UUID from its data directory and name (an RFC 9562 version 8 UUID over
 * SHA-256), so `--show-xml` and `--dry-run` show the UUID the run will define.
 */
export const derivedUuid = (layout: Layout): string => {
  const hex = createHash("sha256").update(`vm-runner:${layout.vmDir}`).digest("hex")
  const variant = ((Number.parseInt(hex[16] ?? "0", 16) & 0x3) | 0x8).toString(16)
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}

/** Reads the UUID an earlier run stored in the VM directory, else derives one. */
const vmUuid = (layout: Layout): string => {
  try {
    const text = readFileSync(layout.uuidFile, "utf8").trim()
    if (/^[0-9a-f-]{36}$/.test(text)) return text
  } catch {
    // A new VM: derive below.
  }
  return derivedUuid(layout)
}

/**
 * The KVM probe's result, kept in /run (a tmpfs on hosts and in containers) because it holds
 * only until the host reboots, and every data directory on this host shares it.
 */
export const kvmProbeCache = (): string => join(runRecordDir(), "kvm-probe.json")

/**
 * How long the user-namespace probe may take; `unshare` returns in milliseconds either way, so
 * this only bounds a hung process.
 */
const userNamespaceProbeTimeout = "5 seconds"

/**
 * Tells whether this process may create a user namespace, which passt needs for its sandbox.
 * Docker's default seccomp profile forbids it, and passt then exits at start ("Couldn't create
 * user namespace"), so NAT falls back to QEMU's user networking.
 */
const canCreateUserNamespace = Effect.gen(function* () {
  const exec = yield* Exec
  const result = yield* exec
    .run(["unshare", "--user", "--map-root-user", "true"], {
      allowFailure: true,
      timeout: userNamespaceProbeTimeout
    })
    .pipe(Effect.option)
  const allowed = result._tag === "Some" && result.value.exitCode === 0
  if (!allowed) {
    yield* Effect.logInfo(
      "passt cannot create its user namespace here (in Docker, run with --security-opt " +
        "seccomp=unconfined to allow it); NAT uses QEMU's user networking instead"
    )
  }
  return allowed
})

/**
 * Chooses virtiofsd's sandbox. Its default sandbox builds mount, PID and network namespaces
 * with unshare(2), which Docker's default seccomp profile and capabilities forbid. Inside a
 * container, and wherever the namespace probe fails, virtiofsd uses chroot(2) instead.
 */
export const chooseVirtiofsSandbox = (
  shares: ReadonlyArray<FilesystemShare>,
  engine: ContainerEngine
) =>
  Effect.gen(function* () {
    if (!shares.some((share) => share.driver === "virtiofs")) return "namespace" as const
    if (engine !== "none") return "chroot" as const
    const exec = yield* Exec
    const result = yield* exec
      .run(["unshare", "--mount", "--pid", "--net", "--fork", "true"], {
        allowFailure: true,
        timeout: userNamespaceProbeTimeout
      })
      .pipe(Effect.option)
    if (result._tag === "None" || result.value.exitCode === 0) return "namespace" as const
    const reason = result.value.stderr.trim() || `unshare exited with ${result.value.exitCode}`
    yield* Effect.logWarning(
      `virtiofsd cannot create the namespaces of its own sandbox here (${reason}); it confines ` +
        "itself with chroot instead. Give vm-runner CAP_SYS_ADMIN for the namespace sandbox"
    )
    return "chroot" as const
  })

/** libvirt accepts `<readonly/>` on virtiofs shares from version 11. */
const virtiofsReadonlyMajor = 11

/** Reads the library's major version from `virsh version` ("Using library: libvirt 9.0.0"). */
export const libvirtMajorVersion = (versionText: string): number =>
  Number(/Using library: libvirt (\d+)\./.exec(versionText)?.[1] ?? 0)

/** Finds the nearest existing directory at or above `path`, for probes before the VM dir exists. */
const existingDir = (path: string): string => {
  let current = path
  while (!existsSync(current) && current !== "/") current = dirname(current)
  return current
}

/** Measures everything the plan needs. `probeOnly` writes nothing (for --dry-run, --show-xml). */
export const gatherFacts = Effect.fn("Prepare.gatherFacts")(function* (
  config: VmConfig,
  layout: Layout,
  images: { readonly base: BaseImage; readonly installIso: string | undefined },
  probeOnly: boolean
) {
  const libvirt = yield* Libvirt
  const qemuImg = yield* QemuImg

  const accelerator = yield* chooseAcceleratorCached(config, kvmProbeCache(), { write: !probeOnly })
  const virtType = accelerator.accel === "kvm" ? "kvm" : "qemu"
  // Both queries make libvirt consult its QEMU capabilities, so ask only when they matter.
  const domainCapabilities = config.network.nics.some((nic) => nic.mode === "nat")
    ? yield* libvirt
        .domainCapabilities(config.arch, config.boot.machine, virtType)
        .pipe(Effect.orElseSucceed(() => ""))
    : ""
  const version = config.filesystems.some((share) => share.driver === "virtiofs" && share.readonly)
    ? yield* libvirt
        .virsh("read the version", undefined, ["version"])
        .pipe(Effect.orElseSucceed(() => ""))
    : ""
  const probeDir = existingDir(layout.vmDir)
  const existingWorkDisk = existsSync(layout.workDisk)
    ? yield* qemuImg.info(layout.workDisk).pipe(
        Effect.map((info) => ({ virtualSize: info.virtualSize })),
        Effect.orElseSucceed(() => undefined)
      )
    : undefined
  const existingExtraDisks = new Set(
    config.storage.extraDisks
      .map((disk) => disk.index)
      .filter((index) => existsSync(layout.extraDisk(index)))
  )
  const blockSectorSizes = new Map<string, number>()
  for (const device of config.storage.blockDevices) {
    const size = logicalSectorSize(device.path)
    if (size !== undefined && size !== 512) blockSectorSizes.set(device.path, size)
  }
  return {
    accelerator,
    passt: supportsPasst(domainCapabilities) && (yield* canCreateUserNamespace),
    virtiofsReadonly: libvirtMajorVersion(version) >= virtiofsReadonlyMajor,
    hostCpu: readHostCpu(),
    directIo: supportsDirectIo(probeDir),
    filesystem: filesystemName(probeDir),
    virtiofsd: findVirtiofsd(),
    virtiofsSandbox: yield* chooseVirtiofsSandbox(
      config.filesystems,
      detectContainerRuntime().engine
    ),
    renderNode: findRenderNode(),
    blockSectorSizes,
    base: images.base,
    installIso: images.installIso,
    existingWorkDisk,
    existingExtraDisks,
    installed: existsSync(layout.installedMarker),
    uuid: vmUuid(layout)
  } satisfies LaunchFacts
})

/** Checks the host has what the plan needs, before anything is written. */
export const checkHost = (plan: LaunchPlan): ReadonlyArray<string> => {
  const problems: Array<string> = []
  for (const path of missingFirmware(
    firmwareFor(plan.config.arch, plan.config.boot.mode, plan.layout.nvram)
  )) {
    problems.push(
      `firmware ${path} is missing; install the ovmf package (qemu-efi-aarch64 for aarch64)`
    )
  }
  if (
    plan.config.filesystems.some((share) => share.driver === "virtiofs") &&
    plan.domain.virtiofsd === undefined
  ) {
    problems.push("virtiofs shares need virtiofsd; install it, or set FILESYSTEM_DRIVER=9p")
  }
  return problems
}

export const makePlan = (config: VmConfig, layout: Layout, facts: LaunchFacts): LaunchPlan => {
  const seed = config.cloudInit.enabled ? renderSeedFiles(config, facts.uuid) : undefined
  return planLaunch(config, layout, facts, seed)
}

const writeAtomically = (path: string, text: string) => {
  writeFileSync(`${path}.tmp`, text)
  renameSync(`${path}.tmp`, path)
}

const applyDisk = Effect.fn("Prepare.applyDisk")(function* (disk: PlannedDisk) {
  const qemuImg = yield* QemuImg
  const action = disk.action
  switch (action._tag) {
    case "Reuse":
      if (action.growTo !== undefined) yield* qemuImg.grow(disk.path, action.growTo)
      return
    case "Overlay":
      rmSync(disk.path, { force: true })
      yield* qemuImg.createOverlay(disk.path, action.backing, action.backingFormat, action.size)
      return
    case "Blank":
      rmSync(disk.path, { force: true })
      yield* qemuImg.createBlank(disk.path, action.size, action.preallocate)
  }
})

const readTextOrUndefined = (path: string) => {
  try {
    return readFileSync(path, "utf8")
  } catch {
    return undefined
  }
}

/**
 * Points libvirt's TPM state directory for this domain at the VM directory, so the TPM's
 * contents live and die with the VM's disks: kept on a persistent volume, removed with an
 * ephemeral VM. libvirt 9 has no setting for this path, so a symlink does it. When the swtpm
 * user cannot reach the VM directory, the state stays where libvirt keeps it, with a warning.
 */
const linkTpmState = (uuid: string, tpmDir: string) =>
  Effect.gen(function* () {
    const link = `${libvirtTpmStateDir}/${uuid}`
    const existing = yield* Effect.sync(() => {
      try {
        return lstatSync(link)
      } catch {
        return undefined
      }
    })
    if (existing !== undefined && !existing.isSymbolicLink()) {
      yield* Effect.logWarning(
        `TPM state stays in ${link}, which an earlier run created as a directory`
      )
      return
    }
    mkdirSync(tpmDir, { recursive: true })
    const user = swtpmUserOf(readTextOrUndefined("/etc/libvirt/qemu.conf"))
    const account = resolveAccount(user, readTextOrUndefined("/etc/passwd") ?? "")
    const blocked = account === undefined ? undefined : blockedDirectory(tpmDir, account)
    if (blocked !== undefined) {
      if (existing !== undefined) rmSync(link, { force: true })
      yield* Effect.logWarning(
        `TPM state stays in ${link}, not in ${tpmDir}: libvirt runs swtpm as ${user}, which ` +
          `may not enter ${blocked}. Let it through (chmod o+x ${blocked}), choose a DATA_DIR ` +
          `it can reach, or set swtpm_user = "root" in /etc/libvirt/qemu.conf`
      )
      return
    }
    if (existing !== undefined && readlinkSync(link) === tpmDir) return
    rmSync(link, { force: true })
    mkdirSync(libvirtTpmStateDir, { recursive: true })
    symlinkSync(tpmDir, link)
  })

/** Writes the plan to disk: VM directory, disks, seed, domain XML. */
export const applyPlan = Effect.fn("Prepare.applyPlan")(function* (plan: LaunchPlan) {
  const seedWriter = yield* Seed
  const { layout } = plan
  mkdirSync(layout.vmDir, { recursive: true })
  writeAtomically(layout.uuidFile, `${plan.domain.uuid}\n`)
  yield* applyDisk(plan.workDisk)
  for (const disk of plan.extraDisks) yield* applyDisk(disk)
  yield* Effect.logInfo("disks ready")
  if (plan.seed !== undefined) {
    yield* seedWriter.write(layout.seedIso, plan.seed)
    yield* Effect.logInfo("cloud-init seed written")
  }
  for (const share of plan.config.filesystems) {
    if (!existsSync(share.source)) {
      mkdirSync(share.source, { recursive: true })
      yield* Effect.logInfo(`created the share directory ${share.source}`)
    }
  }
  if (plan.config.boot.tpm && plan.config.runtime.libvirtUri === "qemu:///system") {
    yield* linkTpmState(plan.domain.uuid, layout.tpmDir)
  }
  rmSync(layout.serialLog, { force: true })
  const xml = planDomainXml(plan)
  writeAtomically(layout.domainXml, xml)
  return xml
})
