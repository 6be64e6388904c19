import { accessSync, constants, readFileSync, statfsSync, statSync } from "node:fs"
import { availableParallelism } from "node:os"
import { dirname, join } from "node:path"
import { MiB } from "../domain/ByteSize.ts"

export type PathKind = "missing" | "file" | "directory" | "block" | "other"

/**
 * Read-only facts about the host that configuration resolution needs. Every method is
 * synchronous and cheap (a few files under /proc and /sys), and tests replace the whole object.
 */
export interface HostFacts {
  /** Memory a VM can use: the smaller of MemAvailable and the cgroup's remaining limit. */
  readonly availableMemoryMiB: () => number
  /** CPUs this process may use: online CPUs limited by the cpuset and the CPU quota. */
  readonly usableCpus: () => number
  /** Free bytes on the filesystem that holds `path` (or its nearest existing parent). */
  readonly freeBytes: (path: string) => number | undefined
  readonly isMountPoint: (path: string) => boolean
  /** The MTU of the interface that carries the default IPv4 route. */
  readonly defaultRouteMtu: () => number | undefined
  readonly pathKind: (path: string) => PathKind
  readonly isReadable: (path: string) => boolean
  readonly readText: (path: string) => string | undefined
  readonly netDevice: (name: string) => "missing" | "bridge" | "device"
}

const readOrUndefined = (path: string): string | undefined => {
  try {
    return readFileSync(path, "utf8")
  } catch {
    return undefined
  }
}

const meminfoKiB = (field: string): number | undefined => {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(
    readOrUndefined("/proc/meminfo") ?? ""
  )
  return match === null ? undefined : Number(match[1])
}

/** The cgroup v2 directory of this process, or undefined under cgroup v1. */
const cgroupV2Dir = (): string | undefined => {
  const line = (readOrUndefined("/proc/self/cgroup") ?? "")
    .split("\n")
    .find((entry) => entry.startsWith("0::"))
  if (line === undefined || readOrUndefined("/sys/fs/cgroup/cgroup.controllers") === undefined) {
    return undefined
  }
  return join("/sys/fs/cgroup", line.slice(3))
}

/** Yields the cgroup v2 directory of this process and each parent up to the root. */
function* cgroupV2Chain(): Generator<string> {
  let dir = cgroupV2Dir()
  while (dir?.startsWith("/sys/fs/cgroup")) {
    yield dir
    if (dir === "/sys/fs/cgroup") return
    dir = dirname(dir)
  }
}

const numberIn = (path: string): number | undefined => {
  const text = readOrUndefined(path)?.trim()
  return text === undefined || !/^\d+$/.test(text) ? undefined : Number(text)
}

/** Bytes left under the tightest cgroup memory limit (v2 or v1), if any limit applies. */
const cgroupMemoryHeadroom = (): number | undefined => {
  let headroom: number | undefined
  for (const dir of cgroupV2Chain()) {
    const limit = numberIn(join(dir, "memory.max"))
    const used = numberIn(join(dir, "memory.current")) ?? 0
    if (limit !== undefined) headroom = Math.min(headroom ?? limit, limit - used)
  }
  if (headroom !== undefined) return headroom
  const limit = numberIn("/sys/fs/cgroup/memory/memory.limit_in_bytes")
  // cgroup v1 reports "no limit" as a huge page-aligned number near 2^63.
  if (limit === undefined || limit > 2 ** 60) return undefined
  return limit - (numberIn("/sys/fs/cgroup/memory/memory.usage_in_bytes") ?? 0)
}

/** Counts the CPUs in a cpuset list such as `0-3,8,10-11`. */
export const countCpuList = (list: string): number =>
  list
    .trim()
    .split(",")
    .filter((part) => part !== "")
    .reduce((total, part) => {
      const [from, to] = part.split("-").map(Number)
      return total + (to === undefined ? 1 : (to ?? 0) - (from ?? 0) + 1)
    }, 0)

const cgroupCpuQuota = (): number | undefined => {
  let quota: number | undefined
  for (const dir of cgroupV2Chain()) {
    const [max, period] = (readOrUndefined(join(dir, "cpu.max")) ?? "").trim().split(/\s+/)
    if (max !== undefined && /^\d+$/.test(max) && period !== undefined) {
      const cpus = Number(max) / Number(period)
      quota = Math.min(quota ?? cpus, cpus)
    }
  }
  if (quota !== undefined) return quota
  const v1Quota = numberIn("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
  const v1Period = numberIn("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
  return v1Quota === undefined || v1Period === undefined ? undefined : v1Quota / v1Period
}

const cpusetSize = (): number | undefined => {
  const list =
    readOrUndefined(join(cgroupV2Dir() ?? "/nonexistent", "cpuset.cpus.effective")) ??
    readOrUndefined("/sys/fs/cgroup/cpuset/cpuset.effective_cpus")
  return list === undefined || list.trim() === "" ? undefined : countCpuList(list)
}

const nearestExisting = (path: string): string => {
  let current = path
  while (current !== "/") {
    try {
      statSync(current)
      return current
    } catch {
      current = dirname(current)
    }
  }
  return "/"
}

/** Finds the device of the default IPv4 route in /proc/net/route (destination 00000000). */
const defaultRouteDevice = (): string | undefined => {
  const lines = (readOrUndefined("/proc/net/route") ?? "").split("\n").slice(1)
  for (const line of lines) {
    const [device, destination, , , , , , mask] = line.trim().split(/\s+/)
    if (destination === "00000000" && mask === "00000000") return device
  }
  return undefined
}

export const liveHostFacts: HostFacts = {
  availableMemoryMiB: () => {
    const available = (meminfoKiB("MemAvailable") ?? 0) * 1024
    const headroom = cgroupMemoryHeadroom()
    return Math.floor(Math.min(available, headroom ?? available) / MiB)
  },
  usableCpus: () => {
    const online = availableParallelism()
    const cpuset = cpusetSize() ?? online
    const quota = cgroupCpuQuota()
    return Math.max(1, Math.min(online, cpuset, quota === undefined ? online : Math.ceil(quota)))
  },
  freeBytes: (path) => {
    try {
      const stats = statfsSync(nearestExisting(path))
      return stats.bavail * stats.bsize
    } catch {
      return undefined
    }
  },
  isMountPoint: (path) => {
    const mounts = readOrUndefined("/proc/self/mountinfo") ?? ""
    // Field 5 of each mountinfo line is the mount point, with spaces escaped as \040.
    return mounts.split("\n").some((line) => line.split(" ")[4]?.replaceAll("\\040", " ") === path)
  },
  defaultRouteMtu: () => {
    const device = defaultRouteDevice()
    return device === undefined ? undefined : numberIn(`/sys/class/net/${device}/mtu`)
  },
  pathKind: (path) => {
    try {
      const stats = statSync(path)
      if (stats.isFile()) return "file"
      if (stats.isDirectory()) return "directory"
      if (stats.isBlockDevice()) return "block"
      return "other"
    } catch {
      return "missing"
    }
  },
  isReadable: (path) => {
    try {
      accessSync(path, constants.R_OK)
      return true
    } catch {
      return false
    }
  },
  readText: readOrUndefined,
  netDevice: (name) => {
    if (!/^[\w.:-]{1,15}$/.test(name)) return "missing"
    const base = `/sys/class/net/${name}`
    try {
      statSync(base)
    } catch {
      return "missing"
    }
    try {
      statSync(join(base, "bridge"))
      return "bridge"
    } catch {
      return "device"
    }
  }
}
