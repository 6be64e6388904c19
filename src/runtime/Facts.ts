import { existsSync, readFileSync, realpathSync } from "node:fs"
import type { BootMode, VmConfig } from "../domain/Config.ts"
import type { FirmwareFiles, HostCpu } from "../libvirt/DomainInputs.ts"

interface FirmwarePair {
  readonly loader: string
  readonly varsTemplate: string
}

/**
 * Firmware images by architecture and boot mode, as Debian's `ovmf` and `qemu-efi-aarch64`
 * packages install them. The `.ms` Secure Boot pair has Microsoft's keys enrolled, which the
 * shim of every major distribution is signed with.
 */
export const firmwareImages: Readonly<Record<string, FirmwarePair>> = {
  "x86_64/uefi": {
    loader: "/usr/share/OVMF/OVMF_CODE_4M.fd",
    varsTemplate: "/usr/share/OVMF/OVMF_VARS_4M.fd"
  },
  "x86_64/secure": {
    loader: "/usr/share/OVMF/OVMF_CODE_4M.ms.fd",
    varsTemplate: "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
  },
  "aarch64/uefi": {
    loader: "/usr/share/AAVMF/AAVMF_CODE.fd",
    varsTemplate: "/usr/share/AAVMF/AAVMF_VARS.fd"
  }
}

/** The firmware files of a VM, or undefined for legacy BIOS boot. */
export const firmwareFor = (
  arch: VmConfig["arch"],
  mode: BootMode,
  nvram: string
): FirmwareFiles | undefined => {
  if (mode === "legacy") return undefined
  const pair = firmwareImages[`${arch}/${mode}`]
  if (pair === undefined) return undefined
  return { ...pair, nvram, secureBoot: mode === "secure" }
}

/** Firmware files that do not exist, for `--dry-run` and a clear error before defining. */
export const missingFirmware = (firmware: FirmwareFiles | undefined): ReadonlyArray<string> =>
  firmware === undefined
    ? []
    : [firmware.loader, firmware.varsTemplate].filter((path) => !existsSync(path))

/** Reads the CPU vendor and feature flags of the first processor in /proc/cpuinfo. */
export const readHostCpu = (cpuinfo = readText("/proc/cpuinfo")): HostCpu => {
  const field = (name: string) =>
    new RegExp(`^${name}\\s*:\\s*(.*)$`, "m").exec(cpuinfo)?.[1]?.trim() ?? ""
  const vendorId = field("vendor_id")
  const vendor = /amd/i.test(vendorId) ? "amd" : /intel/i.test(vendorId) ? "intel" : "other"
  const flags = new Set([...field("flags").split(/\s+/), ...field("vmx flags").split(/\s+/)])
  flags.delete("")
  return { vendor, flags }
}

/** Paths where distributions install virtiofsd: Debian 13 and newer first, then QEMU's own. */
export const virtiofsdPaths = ["/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd"]

export const findVirtiofsd = (): string | undefined =>
  virtiofsdPaths.find((path) => existsSync(path))

/** The first DRM render node, which `GPU=intel` hands to QEMU. */
export const findRenderNode = (): string | undefined =>
  existsSync("/dev/dri/renderD128") ? "/dev/dri/renderD128" : undefined

/** Install paths of passt: the distribution package, then a source build. */
export const passtPaths = ["/usr/bin/passt", "/usr/local/bin/passt"]

/**
 * Tells whether libvirt can use passt for user-mode interfaces: its domain capabilities list
 * the `passt` backend type (libvirt 10.x and later report this), and the binary is installed.
 */
export const supportsPasst = (domainCapabilities: string, binaries = passtPaths): boolean =>
  /<enum name=['"]backendType['"]>[\s\S]*?<value>passt<\/value>/.test(domainCapabilities) &&
  binaries.some((path) => existsSync(path))

/** Reads the logical sector size of a block device from sysfs. */
export const logicalSectorSize = (device: string): number | undefined => {
  try {
    const name = realpathSync(device).split("/").at(-1)
    const text = readFileSync(`/sys/class/block/${name}/queue/logical_block_size`, "utf8")
    return Number(text.trim())
  } catch {
    return undefined
  }
}

const readText = (path: string): string => {
  try {
    return readFileSync(path, "utf8")
  } catch {
    return ""
  }
}
