import { describe, expect, test } from "bun:test"
import { countCpuList, makeHostFacts } from "../../../src/host/HostFacts.ts"
import { fakeSystemFiles } from "./fakeHost.ts"

// HostFacts supplies the numbers behind MEMORY, CPUS and DISK_SIZE set to max or half, so its
// /proc and /sys parsing is tested here with the configuration.

const MiB = 1024 ** 2
const GiB = 1024 ** 3
const meminfo = (availableMiB: number) =>
  "MemTotal:       65536000 kB\nMemFree:         1000 kB\n" +
  `MemAvailable:   ${availableMiB * 1024} kB\n`

/** Files of a cgroup v2 host where this process lives in `path`. */
const cgroupV2 = (path: string, files: Record<string, string>) => ({
  "/proc/meminfo": meminfo(8192),
  "/proc/self/cgroup": `0::${path}\n`,
  "/sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory pids\n",
  ...files
})

const docker = "/sys/fs/cgroup/system.slice/docker-abc.scope"

describe("HostFacts memory", () => {
  test("MemAvailable without a cgroup limit", () => {
    const host = makeHostFacts(fakeSystemFiles({ files: { "/proc/meminfo": meminfo(6000) } }))
    expect(host.availableMemoryMiB()).toBe(6000)
  })

  test("cgroup v2 limit of the container", () => {
    const files = cgroupV2("/system.slice/docker-abc.scope", {
      [`${docker}/memory.max`]: `${2 * GiB}\n`,
      [`${docker}/memory.current`]: `${512 * MiB}\n`,
      "/sys/fs/cgroup/system.slice/memory.max": "max\n"
    })
    expect(makeHostFacts(fakeSystemFiles({ files })).availableMemoryMiB()).toBe(1536)
  })

  test("cgroup v2 parent limit is tighter", () => {
    const files = cgroupV2("/system.slice/docker-abc.scope", {
      [`${docker}/memory.max`]: `${4 * GiB}\n`,
      [`${docker}/memory.current`]: "0\n",
      "/sys/fs/cgroup/system.slice/memory.max": `${1 * GiB}\n`,
      "/sys/fs/cgroup/system.slice/memory.current": `${256 * MiB}\n`
    })
    expect(makeHostFacts(fakeSystemFiles({ files })).availableMemoryMiB()).toBe(768)
  })

  test("cgroup v2 private namespace", () => {
    const files = cgroupV2("/", {
      "/sys/fs/cgroup/memory.max": `${3 * GiB}\n`,
      "/sys/fs/cgroup/memory.current": `${2 * GiB}\n`,
      "/sys/fs/cgroup/memory.stat": `anon ${GiB}\nfile ${GiB}\ninactive_file ${768 * MiB}\n`
    })
    // Inactive file pages are reclaimable, so 2 GiB used counts as 1.25 GiB.
    expect(makeHostFacts(fakeSystemFiles({ files })).availableMemoryMiB()).toBe(1792)
  })

  test("cgroup v2 without a limit", () => {
    const files = cgroupV2("/", { "/sys/fs/cgroup/memory.max": "max\n" })
    expect(makeHostFacts(fakeSystemFiles({ files })).availableMemoryMiB()).toBe(8192)
  })

  test("cgroup v1 limit", () => {
    const files = {
      "/proc/meminfo": meminfo(8192),
      "/proc/self/cgroup": "4:memory:/docker/abc\n",
      "/sys/fs/cgroup/memory/memory.limit_in_bytes": `${GiB}\n`,
      "/sys/fs/cgroup/memory/memory.usage_in_bytes": `${256 * MiB}\n`,
      "/sys/fs/cgroup/memory/memory.stat": `cache 1\ntotal_inactive_file ${128 * MiB}\n`
    }
    expect(makeHostFacts(fakeSystemFiles({ files })).availableMemoryMiB()).toBe(896)
  })

  test("cgroup v1 without a limit", () => {
    const files = {
      "/proc/meminfo": meminfo(8192),
      "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"
    }
    expect(makeHostFacts(fakeSystemFiles({ files })).availableMemoryMiB()).toBe(8192)
  })

  test("cgroup usage above the limit", () => {
    const files = cgroupV2("/", {
      "/sys/fs/cgroup/memory.max": `${GiB}\n`,
      "/sys/fs/cgroup/memory.current": `${2 * GiB}\n`
    })
    expect(makeHostFacts(fakeSystemFiles({ files })).availableMemoryMiB()).toBe(-1024)
  })
})

describe("HostFacts CPUs", () => {
  test("online CPUs without limits", () => {
    expect(makeHostFacts(fakeSystemFiles({ files: {}, onlineCpus: 12 })).usableCpus()).toBe(12)
  })

  test("cgroup v2 quota rounds up", () => {
    const files = cgroupV2("/", { "/sys/fs/cgroup/cpu.max": "150000 100000\n" })
    expect(makeHostFacts(fakeSystemFiles({ files, onlineCpus: 16 })).usableCpus()).toBe(2)
  })

  test("cgroup v2 quota max", () => {
    const files = cgroupV2("/", { "/sys/fs/cgroup/cpu.max": "max 100000\n" })
    expect(makeHostFacts(fakeSystemFiles({ files, onlineCpus: 16 })).usableCpus()).toBe(16)
  })

  test("cgroup v2 cpuset", () => {
    const files = cgroupV2("/", { "/sys/fs/cgroup/cpuset.cpus.effective": "2-4\n" })
    expect(makeHostFacts(fakeSystemFiles({ files, onlineCpus: 16 })).usableCpus()).toBe(3)
  })

  test("cgroup v2 parent quota", () => {
    const files = cgroupV2("/system.slice/docker-abc.scope", {
      [`${docker}/cpu.max`]: "800000 100000\n",
      "/sys/fs/cgroup/system.slice/cpu.max": "300000 100000\n"
    })
    expect(makeHostFacts(fakeSystemFiles({ files, onlineCpus: 16 })).usableCpus()).toBe(3)
  })

  test("cgroup v1 quota and cpuset", () => {
    const files = {
      "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "50000\n",
      "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
      "/sys/fs/cgroup/cpuset/cpuset.effective_cpus": "0-3,8\n"
    }
    expect(makeHostFacts(fakeSystemFiles({ files, onlineCpus: 16 })).usableCpus()).toBe(1)
  })

  test("cgroup v1 without a quota", () => {
    const files = {
      "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
      "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
      "/sys/fs/cgroup/cpuset/cpuset.effective_cpus": "0-3,8\n"
    }
    expect(makeHostFacts(fakeSystemFiles({ files, onlineCpus: 16 })).usableCpus()).toBe(5)
  })

  test("countCpuList", () => {
    expect(countCpuList("0")).toBe(1)
    expect(countCpuList("0-3,8,10-11\n")).toBe(7)
    expect(countCpuList("")).toBe(0)
  })
})

describe("HostFacts paths and devices", () => {
  test("freeBytes of the nearest existing parent", () => {
    const host = makeHostFacts(
      fakeSystemFiles({
        files: {},
        directories: ["/data"],
        freeBytes: { "/": 100 * GiB, "/data": 7 * GiB }
      })
    )
    expect(host.freeBytes("/data/vms/devbox")).toBe(7 * GiB)
    expect(host.freeBytes("/var/lib/vm-runner/vms/devbox")).toBe(100 * GiB)
  })

  test("isMountPoint reads mountinfo", () => {
    const mountinfo =
      "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n" +
      "40 22 8:17 / /data rw,relatime - ext4 /dev/sdb1 rw\n" +
      "41 22 8:18 / /my\\040share rw,relatime - ext4 /dev/sdb2 rw\n"
    const host = makeHostFacts(fakeSystemFiles({ files: { "/proc/self/mountinfo": mountinfo } }))
    expect(host.isMountPoint("/data")).toBe(true)
    expect(host.isMountPoint("/my share")).toBe(true)
    expect(host.isMountPoint("/srv")).toBe(false)
  })

  test("defaultRouteMtu follows the default route", () => {
    const route =
      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
      "eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
      "eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    const files = {
      "/proc/net/route": route,
      "/sys/class/net/eth0/mtu": "1450\n",
      "/sys/class/net/eth1/mtu": "9000\n"
    }
    expect(makeHostFacts(fakeSystemFiles({ files })).defaultRouteMtu()).toBe(1450)
    expect(makeHostFacts(fakeSystemFiles({ files: {} })).defaultRouteMtu()).toBeUndefined()
  })

  test("netDevice kinds", () => {
    const host = makeHostFacts(
      fakeSystemFiles({
        files: {},
        directories: ["/sys/class/net/br0", "/sys/class/net/br0/bridge", "/sys/class/net/eth0"]
      })
    )
    expect(host.netDevice("br0")).toBe("bridge")
    expect(host.netDevice("eth0")).toBe("device")
    expect(host.netDevice("eth9")).toBe("missing")
    expect(host.netDevice("../../etc")).toBe("missing")
  })
})
