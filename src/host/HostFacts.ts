import { accessSync, constants, readFileSync, statfsSync, statSync } from "node:fs"
import { availableParallelism } from "node:os"
import { dirname, join } from "node:path"
import { MiB } from "../domain/ByteSize.ts"

export type PathKind = "missing" | "file" | "directory" | "block" | "other"

/** Names a kind of path for messages: "a file", "a directory", "a block device", ... */
export const describePathKind = (kind: PathKind): string => {
  switch (kind) {
    case "missing":
      return "missing"
    case "file":
      return "a file"
    case "directory":
      return "a directory"
    case "block":
      return "a block device"
    case "other":
      return "a socket, pipe or character device"
  }
}

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

/**
 * The read-only file-system calls behind `HostFacts`. The live version reads the real /proc and
 * /sys; tests pass a fake one to check the cgroup and mount parsing.
 */
export interface SystemFiles {
  readonly readText: (path: string) => string | undefined
  readonly pathKind: (path: string) => PathKind
  readonly isReadable: (path: string) => boolean
  /** Bytes an unprivileged user may still write on the filesystem of an existing path. */
  readonly statfsFree: (path: string) => number | undefined
  /** CPUs this process may run on, from its affinity mask. */
  readonly onlineCpus: () => number
}

const readOrUndefined = (path: string): string | undefined => {
  try {
    return readFileSync(path, "utf8")
  } catch {
    return undefined
  }
}

export const liveSystemFiles: SystemFiles = {
  readText: readOrUndefined,
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
  statfsFree: (path) => {
    try {
      const stats = statfsSync(path)
      return stats.bavail * stats.bsize
    } catch {
      return undefined
    }
  },
  onlineCpus: availableParallelism
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

/** Reads `field` in KiB from /proc/meminfo text. */
const meminfoKiB = (meminfo: string, field: string): number | undefined => {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(meminfo)
  return match === null ? undefined : Number(match[1])
}

/** Reads a `key value` line of a cgroup `memory.stat` file. */
const memoryStat = (stat: string | undefined, key: string): number | undefined => {
  const match = new RegExp(`^${key} (\\d+)$`, "m").exec(stat ?? "")
  return match === null ? undefined : Number(match[1])
}

/** Decodes the octal escapes (`\040` for a space) that mountinfo uses in paths. */
const unescapeMountPath = (path: string): string =>
  path.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(Number.parseInt(octal, 8))
  )

/** Builds `HostFacts` on top of `files`. */
export const makeHostFacts = (files: SystemFiles): HostFacts => {
  const numberIn = (path: string): number | undefined => {
    const text = files.readText(path)?.trim()
    return text === undefined || !/^\d+$/.test(text) ? undefined : Number(text)
  }

  /** Finds the cgroup v2 directory of this process, or undefined under cgroup v1. */
  const cgroupV2Dir = (): string | undefined => {
    const line = (files.readText("/proc/self/cgroup") ?? "")
      .split("\n")
      .find((entry) => entry.startsWith("0::"))
    if (line === undefined || files.readText("/sys/fs/cgroup/cgroup.controllers") === undefined) {
      return undefined
    }
    // Inside a private cgroup namespace the path is "/", the root of the container's own tree.
    return join("/sys/fs/cgroup", line.slice(3).trim()).replace(/\/$/, "")
  }

  /** Lists the cgroup v2 directory of this process and each parent up to the root. */
  const cgroupV2Chain = (): Array<string> => {
    const chain: Array<string> = []
    let dir = cgroupV2Dir()
    while (dir?.startsWith("/sys/fs/cgroup")) {
      chain.push(dir)
      if (dir === "/sys/fs/cgroup") break
      dir = dirname(dir)
    }
    return chain
  }

  /**
   * Computes the bytes left under the tightest cgroup memory limit (v2 or v1), if any limit
   * applies. Usage leaves out inactive file pages, which the kernel reclaims before it kills
   * anything, as the usage Podman and `docker stats` report does.
   */
  const cgroupMemoryHeadroom = (): number | undefined => {
    let headroom: number | undefined
    for (const dir of cgroupV2Chain()) {
      const limit = numberIn(join(dir, "memory.max"))
      if (limit === undefined) continue
      const current = numberIn(join(dir, "memory.current")) ?? 0
      const inactive = memoryStat(files.readText(join(dir, "memory.stat")), "inactive_file") ?? 0
      headroom = Math.min(headroom ?? limit, limit - Math.max(0, current - inactive))
    }
    if (headroom !== undefined) return headroom
    const v1 = "/sys/fs/cgroup/memory"
    const limit = numberIn(`${v1}/memory.limit_in_bytes`)
    // cgroup v1 reports "no limit" as a huge page-aligned number near 2^63.
    if (limit === undefined || limit > 2 ** 60) return undefined
    const usage = numberIn(`${v1}/memory.usage_in_bytes`) ?? 0
    const inactive = memoryStat(files.readText(`${v1}/memory.stat`), "total_inactive_file") ?? 0
    return limit - Math.max(0, usage - inactive)
  }

  /** Computes the CPUs the tightest CFS quota allows (v2 `cpu.max` or v1 `cfs_quota_us`). */
  const cgroupCpuQuota = (): number | undefined => {
    let quota: number | undefined
    for (const dir of cgroupV2Chain()) {
      const [max, period] = (files.readText(join(dir, "cpu.max")) ?? "").trim().split(/\s+/)
      if (max !== undefined && /^\d+$/.test(max) && period !== undefined && /^\d+$/.test(period)) {
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
    const v2Dir = cgroupV2Dir()
    const list =
      (v2Dir === undefined ? undefined : files.readText(join(v2Dir, "cpuset.cpus.effective"))) ??
      files.readText("/sys/fs/cgroup/cpuset/cpuset.effective_cpus")
    return list === undefined || list.trim() === "" ? undefined : countCpuList(list)
  }

  const nearestExisting = (path: string): string => {
    let current = path
    while (current !== "/" && current !== "." && files.pathKind(current) === "missing") {
      current = dirname(current)
    }
    return current
  }

  /** Finds the device of the default IPv4 route in /proc/net/route (destination 00000000). */
  const defaultRouteDevice = (): string | undefined => {
    const lines = (files.readText("/proc/net/route") ?? "").split("\n").slice(1)
    for (const line of lines) {
      const [device, destination, , , , , , mask] = line.trim().split(/\s+/)
      if (destination === "00000000" && mask === "00000000") return device
    }
    return undefined
  }

  return {
    availableMemoryMiB: () => {
      const meminfo = files.readText("/proc/meminfo") ?? ""
      const available = (meminfoKiB(meminfo, "MemAvailable") ?? 0) * 1024
      const headroom = cgroupMemoryHeadroom()
      return Math.floor(Math.min(available, headroom ?? available) / MiB)
    },
    usableCpus: () => {
      const online = files.onlineCpus()
      const cpuset = cpusetSize() ?? online
      const quota = cgroupCpuQuota()
      // A fractional quota such as 1.5 CPUs still lets a second vCPU thread run part time.
      return Math.max(1, Math.min(online, cpuset, quota === undefined ? online : Math.ceil(quota)))
    },
    freeBytes: (path) => files.statfsFree(nearestExisting(path)),
    isMountPoint: (path) => {
      const mounts = files.readText("/proc/self/mountinfo") ?? ""
      // Field 5 of each mountinfo line is the mount point.
      return mounts.split("\n").some((line) => {
        const mountPoint = line.split(" ")[4]
        return mountPoint !== undefined && unescapeMountPath(mountPoint) === path
      })
    },
    defaultRouteMtu: () => {
      const device = defaultRouteDevice()
      return device === undefined ? undefined : numberIn(`/sys/class/net/${device}/mtu`)
    },
    pathKind: files.pathKind,
    isReadable: files.isReadable,
    readText: files.readText,
    netDevice: (name) => {
      if (!/^[\w.:-]{1,15}$/.test(name)) return "missing"
      const base = `/sys/class/net/${name}`
      if (files.pathKind(base) === "missing") return "missing"
      return files.pathKind(join(base, "bridge")) === "missing" ? "device" : "bridge"
    }
  }
}

export const liveHostFacts: HostFacts = makeHostFacts(liveSystemFiles)
