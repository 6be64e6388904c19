import {
  closeSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { Effect } from "effect"
import { hostArch } from "../domain/Arch.ts"
import type { VmConfig } from "../domain/Config.ts"
import { Exec } from "../process/Exec.ts"

export interface AcceleratorChoice {
  readonly accel: "kvm" | "tcg"
  /** Why, in words for the log: "KVM ran a test guest", "/dev/kvm is missing", ... */
  readonly reason: string
}

/** The QEMU binary for a guest architecture. */
export const qemuBinary = (arch: VmConfig["arch"]): string =>
  arch === "x86_64" ? "qemu-system-x86_64" : "qemu-system-aarch64"

/**
 * How long the probe guest may take. SeaBIOS reaches "No bootable device" in about 0.15 s
 * under TCG on a 2-core test machine and faster under KVM, so a working KVM never comes near
 * this; a broken nested KVM hangs here instead, which is what the limit catches.
 */
export const probeTimeout = "5 seconds"

/** SeaBIOS prints this to its debug port once it has run every boot entry. */
const probeMarker = "No bootable device"

const isHostPassthrough = (model: string) =>
  ["host", "host-passthrough"].includes(model.toLowerCase())

/**
 * The argv of a probe guest: SeaBIOS with no disks, its debug output on port 0x402, and a
 * reboot after the boot attempts fail, which -no-reboot turns into a clean QEMU exit. Running
 * real firmware with the guest's CPU model catches the nested-KVM failures seen in practice:
 * QEMU aborting on an MSR it cannot set, or vCPUs that never make progress.
 */
export const probeArgv = (config: VmConfig, debugLog: string): ReadonlyArray<string> => [
  qemuBinary(config.arch),
  "-machine",
  `${config.boot.machine === "pc" ? "pc" : "q35"},accel=kvm`,
  "-cpu",
  isHostPassthrough(config.devices.cpuModel) ? "host" : config.devices.cpuModel,
  "-m",
  "64",
  "-nodefaults",
  "-no-user-config",
  "-display",
  "none",
  "-no-reboot",
  "-boot",
  "strict=on,reboot-timeout=0",
  "-chardev",
  `file,id=probe,path=${debugLog}`,
  "-device",
  "isa-debugcon,iobase=0x402,chardev=probe"
]

const canOpenKvm = (): string | undefined => {
  try {
    closeSync(openSync("/dev/kvm", constants.O_RDWR))
    return undefined
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    return code === "ENOENT" ? "/dev/kvm is missing" : `/dev/kvm cannot be opened (${code})`
  }
}

/**
 * Decides between KVM and TCG by running a tiny guest under KVM, because a /dev/kvm that opens
 * can still be unusable (broken nested virtualization).
 */
export const chooseAccelerator = Effect.fn("Accelerator.choose")(function* (config: VmConfig) {
  const host = hostArch()
  if (host !== config.arch) {
    return {
      accel: "tcg",
      reason: `KVM cannot run ${config.arch} guests on a ${host} host`
    } as const
  }
  const openProblem = canOpenKvm()
  if (openProblem !== undefined) return { accel: "tcg", reason: openProblem } as const
  if (config.arch !== "x86_64") {
    return {
      accel: "kvm",
      reason: "/dev/kvm opens (no probe guest for this architecture)"
    } as const
  }

  const exec = yield* Exec
  const dir = mkdtempSync(join(tmpdir(), "vm-runner-kvm-probe-"))
  const debugLog = join(dir, "seabios.log")
  const outcome = yield* exec
    .run(probeArgv(config, debugLog), { timeout: probeTimeout, allowFailure: true })
    .pipe(
      Effect.map((result) => {
        const log = (() => {
          try {
            return readFileSync(debugLog, "utf8")
          } catch {
            return ""
          }
        })()
        if (result.exitCode === 0 && log.includes(probeMarker)) {
          return { accel: "kvm", reason: "KVM ran a test guest" } as const
        }
        const stderr = result.stderr.trim().split("\n").at(-1) ?? ""
        return {
          accel: "tcg",
          reason: `/dev/kvm opens but a test guest failed under KVM (exit status ${result.exitCode}${stderr === "" ? "" : `: ${stderr}`})`
        } as const
      }),
      Effect.catchTag("CommandTimedOut", () =>
        Effect.succeed({
          accel: "tcg",
          reason: `/dev/kvm opens but a test guest made no progress under KVM within ${probeTimeout}`
        } as const)
      ),
      Effect.ensuring(Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    )
  return outcome as AcceleratorChoice
})

const bootId = (): string => {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim()
  } catch {
    return "unknown"
  }
}

const readCachedChoice = (file: string, key: string): AcceleratorChoice | undefined => {
  try {
    const cached = JSON.parse(readFileSync(file, "utf8")) as {
      key: string
      choice: AcceleratorChoice
    }
    return cached.key === key ? cached.choice : undefined
  } catch {
    return undefined
  }
}

/**
 * Runs `chooseAccelerator`, reusing a result stored in `cacheFile` by an earlier run of the
 * same probe since the host last booted: the answer cannot change without a reboot or a
 * different CPU model, and the probe costs up to five seconds on a host where KVM hangs.
 */
export const chooseAcceleratorCached = Effect.fn("Accelerator.chooseCached")(function* (
  config: VmConfig,
  cacheFile: string,
  options: { readonly write: boolean }
) {
  const key = JSON.stringify({ boot: bootId(), argv: probeArgv(config, "").slice(0, 6) })
  const cached = readCachedChoice(cacheFile, key)
  if (cached !== undefined)
    return { ...cached, reason: `${cached.reason} (probed earlier this boot)` }
  const choice = yield* chooseAccelerator(config)
  if (options.write) {
    yield* Effect.sync(() => {
      mkdirSync(dirname(cacheFile), { recursive: true })
      writeFileSync(`${cacheFile}.tmp`, JSON.stringify({ key, choice }))
      renameSync(`${cacheFile}.tmp`, cacheFile)
    }).pipe(Effect.catchDefect(() => Effect.void))
  }
  return choice
})
