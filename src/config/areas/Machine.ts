import type { Catalogue } from "../../catalogue/Catalogue.ts"
import { normalizeArch } from "../../domain/Arch.ts"
import { MiB, parseByteSize } from "../../domain/ByteSize.ts"
import type {
  Arch,
  BootFrom,
  BootMode,
  Devices,
  Distro,
  GpuMode,
  MachineType
} from "../../domain/Config.ts"
import type { HostFacts } from "../../host/HostFacts.ts"
import type { EnvReader } from "../Env.ts"
import { editDistance } from "../KnownVariables.ts"
import { splitArguments } from "../SplitArguments.ts"

/** Memory kept for the host, QEMU and libvirt when `MEMORY=max`. */
export const memoryReserveMiB = 512
/** The smallest guest `MEMORY` accepted; below this no supported distribution boots. */
export const minimumMemoryMiB = 128
/** A sanity bound on `CPUS`; QEMU also enforces its machine type's own limit (288 for q35 in 7.2). */
export const maximumCpus = 1024

/** Finds the catalogue key closest to a mistyped `DISTRO`, such as ubuntu-2404 for ubuntu-24.04. */
const nearestKey = (keys: ReadonlyArray<string>, value: string): string | undefined => {
  let best: { key: string; distance: number } | undefined
  for (const key of keys) {
    const distance = editDistance(value, key, 3)
    if (distance <= 3 && (best === undefined || distance < best.distance)) best = { key, distance }
  }
  return best?.key
}

export const resolveDistro = (
  reader: EnvReader,
  catalogue: Catalogue,
  catalogueSource: string
): Distro | undefined => {
  // Catalogue keys are lower case, so DISTRO=Debian-12 selects debian-12.
  const key = reader.string("DISTRO", "ubuntu-2404").toLowerCase()
  const distro = catalogue.get(key)
  if (distro === undefined) {
    const keys = [...catalogue.keys()]
    const suggestion = nearestKey(keys, key) ?? (keys.includes("debian-12") ? "debian-12" : keys[0])
    const listing = `run --list-distros to see all ${keys.length}`
    reader.problem(
      "DISTRO",
      reader.isSet("DISTRO")
        ? `unknown distribution in ${catalogueSource}; ${listing}`
        : `the default distribution ${key} is not in ${catalogueSource}; set DISTRO (${listing})`,
      `DISTRO=${suggestion}`
    )
  }
  return distro
}

/**
 * Resolves `ARCH`. Without `BOOT_FROM` the catalogue entry decides and `ARCH` may only repeat
 * it. With `BOOT_FROM` the image is the user's own, so `ARCH` decides, and the distribution's
 * architecture is only the default.
 */
export const resolveArch = (
  reader: EnvReader,
  distro: Distro | undefined,
  from: BootFrom
): Arch => {
  const raw = reader.get("ARCH")
  const requested = raw === undefined ? undefined : normalizeArch(raw)
  if (raw !== undefined && requested === undefined) {
    reader.problem("ARCH", "expected x86_64 (alias amd64) or aarch64 (alias arm64)", "ARCH=x86_64")
  }
  if (from._tag !== "Catalogue") return requested ?? distro?.arch ?? "x86_64"
  if (distro !== undefined && requested !== undefined && requested !== distro.arch) {
    reader.problem(
      "ARCH",
      `DISTRO=${distro.key} is an ${distro.arch} image; leave ARCH unset, or choose a ` +
        `distribution built for ${requested} (--list-distros ${requested} lists them)`,
      `ARCH=${distro.arch}`
    )
  }
  return distro?.arch ?? requested ?? "x86_64"
}

export const resolveMemory = (reader: EnvReader, host: HostFacts): number => {
  const raw = reader.get("MEMORY")
  if (raw === undefined) return 4096
  const lower = raw.toLowerCase()
  if (lower === "max" || lower === "half") {
    const available = host.availableMemoryMiB()
    const memory = lower === "max" ? available - memoryReserveMiB : Math.floor(available / 2)
    if (memory < minimumMemoryMiB) {
      reader.problem(
        "MEMORY",
        `only ${Math.max(0, available)} MiB of memory is available to this container, so ` +
          `${lower} would give the guest less than the minimum of ${minimumMemoryMiB} MiB; ` +
          "raise the container's memory limit or set a number of MiB",
        `MEMORY=${minimumMemoryMiB}`
      )
      return minimumMemoryMiB
    }
    reader.notes.push(`MEMORY=${lower} resolved to ${memory} MiB (${available} MiB available)`)
    return memory
  }
  // A plain number is MiB; a number with a unit is converted, so MEMORY=8G works too.
  const mib = /^\d+$/.test(raw) ? Number(raw) : (parseByteSize(raw) ?? 0) / MiB
  if (!Number.isInteger(mib) || mib < minimumMemoryMiB) {
    reader.problem(
      "MEMORY",
      `expected a whole number of MiB of at least ${minimumMemoryMiB}, a size such as 8G, ` +
        "max (all available memory minus 512 MiB) or half",
      "MEMORY=4096"
    )
    return 4096
  }
  const available = host.availableMemoryMiB()
  if (mib > available) {
    reader.warnings.push(
      `MEMORY=${raw} is more than the ${available} MiB available here; the guest starts, but ` +
        "the kernel may kill QEMU when the guest uses that much"
    )
  }
  return mib
}

export const resolveCpus = (reader: EnvReader, host: HostFacts): number => {
  const raw = reader.get("CPUS")
  if (raw === undefined) return 2
  const lower = raw.toLowerCase()
  if (lower === "max" || lower === "half") {
    const usable = host.usableCpus()
    const cpus = lower === "max" ? usable : Math.max(1, Math.floor(usable / 2))
    reader.notes.push(`CPUS=${lower} resolved to ${cpus} (${usable} usable by this container)`)
    return cpus
  }
  const cpus = Number(raw)
  if (!/^\d+$/.test(raw) || cpus < 1 || cpus > maximumCpus) {
    reader.problem(
      "CPUS",
      `expected a whole number from 1 to ${maximumCpus}, max or half`,
      "CPUS=2"
    )
    return 2
  }
  const usable = host.usableCpus()
  if (cpus > usable) {
    reader.warnings.push(
      `CPUS=${cpus} is more than the ${usable} CPUs usable here; the vCPUs share them, so ` +
        "the guest runs slower than with fewer"
    )
  }
  return cpus
}

export interface Firmware {
  readonly mode: BootMode
  readonly tpm: boolean
  readonly machine: MachineType
}

export const resolveFirmware = (reader: EnvReader, arch: Arch): Firmware => {
  const mode = reader.choice("BOOT_MODE", "uefi", ["uefi", "legacy", "secure"] as const)
  if (arch === "aarch64" && mode !== "uefi") {
    reader.problem("BOOT_MODE", "aarch64 guests boot only with uefi (AAVMF)", "BOOT_MODE=uefi")
  }
  const tpm = reader.bool("TPM", mode === "secure")
  const machineRaw = reader.get("MACHINE")?.toLowerCase()
  let machine: MachineType = arch === "x86_64" ? "q35" : "virt"
  if (machineRaw !== undefined) {
    const allowed: ReadonlyArray<MachineType> = arch === "x86_64" ? ["q35", "pc"] : ["virt"]
    const match = allowed.find((candidate) => candidate === machineRaw)
    if (match === undefined) {
      reader.problem(
        "MACHINE",
        `expected ${allowed.join(" or ")} for ${arch}`,
        `MACHINE=${allowed[0]}`
      )
    } else {
      machine = match
    }
  }
  if (mode === "secure" && machine === "pc") {
    reader.problem(
      "MACHINE",
      "Secure Boot needs q35 (OVMF's Secure Boot build needs SMM)",
      "MACHINE=q35"
    )
  }
  return { mode, tpm, machine }
}

export const resolveDevices = (reader: EnvReader, machine: MachineType): Devices => {
  const cpuModel = reader.string("CPU_MODEL", "host")
  if (!/^[A-Za-z0-9][A-Za-z0-9_.,+=-]*$/.test(cpuModel)) {
    reader.problem(
      "CPU_MODEL",
      "expected host, host-passthrough or a QEMU CPU model name",
      "CPU_MODEL=host"
    )
  }
  const hyperv = reader.bool("HYPERV", false)
  const gpu: GpuMode = reader.choice("GPU", "off", ["off", "intel"] as const)
  const extra = reader.raw("EXTRA_ARGS")
  const extraArgs = extra === undefined ? { args: [] } : splitArguments(extra)
  if ("error" in extraArgs) {
    reader.problem(
      "EXTRA_ARGS",
      extraArgs.error,
      'EXTRA_ARGS=\'-device {"driver":"virtio-keyboard-pci"}\''
    )
  }
  if (hyperv && machine === "virt") {
    reader.problem("HYPERV", "Hyper-V enlightenments exist only for x86_64 guests", "HYPERV=0")
  }
  return {
    cpuModel,
    hyperv,
    gpu,
    usb: reader.bool("USB", true),
    balloon: reader.bool("BALLOON", true),
    rng: reader.bool("RNG", true),
    extraArgs: "args" in extraArgs ? extraArgs.args : []
  }
}
