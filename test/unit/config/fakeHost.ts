import type { HostFacts, PathKind, SystemFiles } from "../../../src/host/HostFacts.ts"

/** Every fact a fake host reports. Paths not listed are missing. */
export interface FakeHostOptions {
  /** Memory a VM may use, as the live host works it out from MemAvailable and cgroup limits. */
  readonly availableMemoryMiB: number
  /** CPUs usable after the cpuset and CPU quota. */
  readonly usableCpus: number
  /** Free bytes by filesystem root; a path takes the entry of its longest matching prefix. */
  readonly freeBytes: Readonly<Record<string, number>>
  readonly mountPoints: ReadonlyArray<string>
  readonly defaultRouteMtu: number | undefined
  readonly pathKinds: Readonly<Record<string, PathKind>>
  /** File contents. A path listed here is a readable file unless `pathKinds` sets its kind. */
  readonly files: Readonly<Record<string, string>>
  readonly unreadable: ReadonlyArray<string>
  readonly netDevices: Readonly<Record<string, "bridge" | "device">>
}

/** A container with 16 GiB free memory, 8 CPUs, 100 GiB free on `/`, and no volumes. */
export const defaultHostOptions: FakeHostOptions = {
  availableMemoryMiB: 16384,
  usableCpus: 8,
  freeBytes: { "/": 100 * 1024 ** 3 },
  mountPoints: [],
  defaultRouteMtu: 1500,
  pathKinds: {},
  files: {},
  unreadable: [],
  netDevices: { eth0: "device" }
}

const longestPrefix = (table: Readonly<Record<string, number>>, path: string) => {
  const roots = Object.keys(table)
    .filter((root) => root === "/" || path === root || path.startsWith(`${root}/`))
    .sort((a, b) => b.length - a.length)
  const root = roots[0]
  return root === undefined ? undefined : table[root]
}

/** A `HostFacts` whose every answer comes from `overrides` on top of `defaultHostOptions`. */
export const fakeHost = (overrides: Partial<FakeHostOptions> = {}): HostFacts => {
  const options: FakeHostOptions = { ...defaultHostOptions, ...overrides }
  const pathKind = (path: string): PathKind =>
    (Object.hasOwn(options.pathKinds, path) ? options.pathKinds[path] : undefined) ??
    (Object.hasOwn(options.files, path) ? "file" : "missing")
  return {
    availableMemoryMiB: () => options.availableMemoryMiB,
    usableCpus: () => options.usableCpus,
    freeBytes: (path) => longestPrefix(options.freeBytes, path),
    isMountPoint: (path) => options.mountPoints.includes(path),
    defaultRouteMtu: () => options.defaultRouteMtu,
    pathKind,
    isReadable: (path) => pathKind(path) !== "missing" && !options.unreadable.includes(path),
    readText: (path) =>
      options.unreadable.includes(path) || !Object.hasOwn(options.files, path)
        ? undefined
        : options.files[path],
    netDevice: (name) =>
      Object.hasOwn(options.netDevices, name) ? (options.netDevices[name] ?? "missing") : "missing"
  }
}

/** A fake /proc and /sys for `makeHostFacts`: file contents, extra directories, CPU count. */
export interface FakeSystemOptions {
  readonly files: Readonly<Record<string, string>>
  readonly directories?: ReadonlyArray<string>
  readonly onlineCpus?: number
  readonly freeBytes?: Readonly<Record<string, number>>
}

/** `SystemFiles` backed by a map of paths, for testing the live cgroup and mount parsing. */
export const fakeSystemFiles = (options: FakeSystemOptions): SystemFiles => {
  const directories = new Set(options.directories ?? [])
  return {
    readText: (path) => (Object.hasOwn(options.files, path) ? options.files[path] : undefined),
    pathKind: (path) => {
      if (Object.hasOwn(options.files, path)) return "file"
      if (path === "/" || directories.has(path)) return "directory"
      return "missing"
    },
    isReadable: (path) => Object.hasOwn(options.files, path),
    statfsFree: (path) =>
      options.freeBytes !== undefined && Object.hasOwn(options.freeBytes, path)
        ? options.freeBytes[path]
        : undefined,
    onlineCpus: () => options.onlineCpus ?? 4
  }
}
