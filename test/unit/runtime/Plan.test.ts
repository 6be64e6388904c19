import { describe, expect, test } from "bun:test"
import { type ByteSize, GiB } from "../../../src/domain/ByteSize.ts"
import type { BootDevice, DiskCache, DiskIo, VmConfig } from "../../../src/domain/Config.ts"
import { makeLayout } from "../../../src/domain/Layout.ts"
import {
  type BaseImage,
  droppedDeviceWarnings,
  effectiveDiskIo,
  type LaunchFacts,
  planLaunch
} from "../../../src/runtime/Plan.ts"
import { resolveValid } from "../config/resolveHelpers.ts"
import { amdHost, type ConfigOverrides, makeConfig, vmDir } from "../libvirt/fixtures.ts"

const layout = makeLayout("/var/lib/vm-runner", "testvm")
const gib = (count: number) => (count * GiB) as ByteSize
const installIso = "/var/lib/vm-runner/base/debian-12.5.0-amd64-netinst-1a2b3c.iso"

const cloudImage = (virtualSize: number): BaseImage => ({
  _tag: "Image",
  path: "/var/lib/vm-runner/base/noble-server-cloudimg-amd64-9f8e7d.qcow2",
  format: "qcow2",
  virtualSize
})

/** Facts of an ext4 host with KVM and a 3.5 GiB cloud image, before any run left files. */
const makeFacts = (overrides: Partial<LaunchFacts> = {}): LaunchFacts => ({
  accelerator: { accel: "kvm", reason: "KVM ran a test guest" },
  passt: false,
  virtiofsReadonly: false,
  virtiofsSandbox: "namespace",
  hostCpu: amdHost,
  directIo: true,
  filesystem: "ext4",
  virtiofsd: undefined,
  renderNode: undefined,
  blockSectorSizes: new Map(),
  base: cloudImage(3.5 * GiB),
  installIso: undefined,
  existingWorkDisk: undefined,
  existingExtraDisks: new Set(),
  installed: false,
  uuid: "6b1c6d4e-2f0a-4c1e-9b7a-3d5e8f9a0b1c",
  ...overrides
})

const plan = (config: ConfigOverrides = {}, facts: Partial<LaunchFacts> = {}) =>
  planLaunch(makeConfig(config), layout, makeFacts(facts), undefined)

const persistent = { runtime: { persist: true } } as const satisfies ConfigOverrides

describe("planLaunch work disk", () => {
  test("layout matches the fixtures' VM directory", () => {
    expect(layout.vmDir).toBe(vmDir)
  })

  test("overlay grows a small image to DISK_SIZE", () => {
    const result = plan({ storage: { diskSize: gib(20) } })
    expect(result.workDisk.path).toBe(layout.workDisk)
    expect(result.workDisk.action).toEqual({
      _tag: "Overlay",
      backing: "/var/lib/vm-runner/base/noble-server-cloudimg-amd64-9f8e7d.qcow2",
      backingFormat: "qcow2",
      size: gib(20)
    })
    expect(result.notes).toEqual([])
    expect(result.warnings).toEqual([])
  })

  test("overlay keeps an image of exactly DISK_SIZE", () => {
    const result = plan({ storage: { diskSize: gib(20) } }, { base: cloudImage(20 * GiB) })
    expect(result.workDisk.action).toMatchObject({ _tag: "Overlay", size: undefined })
    expect(result.notes).toEqual([])
  })

  test("overlay names a raw base's format", () => {
    const base: BaseImage = {
      _tag: "Image",
      path: "/var/lib/vm-runner/base/disk.raw",
      format: "raw",
      virtualSize: 2 * GiB
    }
    const result = plan({}, { base })
    expect(result.workDisk.action).toMatchObject({
      _tag: "Overlay",
      backing: "/var/lib/vm-runner/base/disk.raw",
      backingFormat: "raw"
    })
  })

  test("base larger than DISK_SIZE is kept with a note", () => {
    const result = plan({ storage: { diskSize: gib(20) } }, { base: cloudImage(32 * GiB) })
    expect(result.workDisk.action).toMatchObject({ _tag: "Overlay", size: undefined })
    expect(result.notes).toHaveLength(1)
    expect(result.notes[0]).toContain("32.0 GiB")
    expect(result.notes[0]).toContain("DISK_SIZE=20G")
    expect(result.notes[0]).toContain("keeping the image's size")
    expect(result.warnings).toEqual([])
  })

  test("blank base makes a blank disk of DISK_SIZE", () => {
    const result = plan({ storage: { diskSize: gib(40) } }, { base: { _tag: "Blank" } })
    expect(result.workDisk.action).toEqual({ _tag: "Blank", size: gib(40), preallocate: false })
  })

  test("blank disk follows ALLOCATE", () => {
    const result = plan(
      { storage: { diskSize: gib(8), preallocate: true } },
      { base: { _tag: "Blank" } }
    )
    expect(result.workDisk.action).toEqual({ _tag: "Blank", size: gib(8), preallocate: true })
  })

  test("persistent disk grows to a larger DISK_SIZE", () => {
    const result = plan(
      { ...persistent, storage: { diskSize: gib(30) } },
      { existingWorkDisk: { virtualSize: 20 * GiB } }
    )
    expect(result.workDisk.action).toEqual({ _tag: "Reuse", growTo: gib(30) })
    expect(result.notes).toEqual(["growing the persistent disk from 20.0 GiB to 30G"])
    expect(result.warnings).toEqual([])
  })

  test("persistent disk of DISK_SIZE is reused as it is", () => {
    const result = plan(
      { ...persistent, storage: { diskSize: gib(20) } },
      { existingWorkDisk: { virtualSize: 20 * GiB } }
    )
    expect(result.workDisk.action).toEqual({ _tag: "Reuse", growTo: undefined })
    expect(result.notes).toEqual([])
    expect(result.warnings).toEqual([])
  })

  test("persistent disk larger than DISK_SIZE warns", () => {
    const result = plan(
      { ...persistent, storage: { diskSize: gib(10) } },
      { existingWorkDisk: { virtualSize: 20 * GiB } }
    )
    expect(result.workDisk.action).toEqual({ _tag: "Reuse", growTo: undefined })
    expect(result.warnings).toHaveLength(1)
    expect(result.warnings[0]).toContain("DISK_SIZE=10G")
    expect(result.warnings[0]).toContain("20.0 GiB")
    expect(result.warnings[0]).toContain("never shrunk")
  })

  test("persistent disk wins over a blank base", () => {
    const result = plan(persistent, {
      base: { _tag: "Blank" },
      existingWorkDisk: { virtualSize: 20 * GiB }
    })
    expect(result.workDisk.action._tag).toBe("Reuse")
  })

  test("existing disk without PERSIST is replaced", () => {
    const result = plan({}, { existingWorkDisk: { virtualSize: 20 * GiB } })
    expect(result.workDisk.action._tag).toBe("Overlay")
  })
})

describe("planLaunch extra disks", () => {
  const storage = {
    extraDisks: [
      { index: 2, size: gib(50) },
      { index: 4, size: gib(10) }
    ]
  }

  test("persistent run reuses or creates", () => {
    const result = plan({ ...persistent, storage }, { existingExtraDisks: new Set([2]) })
    expect(result.extraDisks).toEqual([
      {
        index: 2,
        path: `${vmDir}/disk2.qcow2`,
        action: { _tag: "Reuse", growTo: undefined }
      },
      {
        index: 4,
        path: `${vmDir}/disk4.qcow2`,
        action: { _tag: "Blank", size: gib(10), preallocate: false }
      }
    ])
  })

  test("ephemeral run creates every disk", () => {
    const result = plan(
      { storage: { ...storage, preallocate: true } },
      { existingExtraDisks: new Set([2, 4]) }
    )
    expect(result.extraDisks.map((disk) => disk.action)).toEqual([
      { _tag: "Blank", size: gib(50), preallocate: true },
      { _tag: "Blank", size: gib(10), preallocate: true }
    ])
  })

  test("domain lists the extra disks by index", () => {
    const result = plan({ storage })
    expect(result.domain.extraDisks).toEqual([
      { index: 2, path: `${vmDir}/disk2.qcow2` },
      { index: 4, path: `${vmDir}/disk4.qcow2` }
    ])
  })
})

describe("planLaunch installer ISO", () => {
  const isoBoot = {
    boot: { order: ["cdrom", "hd"] as ReadonlyArray<BootDevice> },
    cloudInit: { enabled: false }
  } as const satisfies ConfigOverrides
  const installedDisk = {
    installIso,
    installed: true,
    existingWorkDisk: { virtualSize: 20 * GiB }
  } as const satisfies Partial<LaunchFacts>

  test("first run attaches the ISO", () => {
    const result = plan({ ...isoBoot, ...persistent }, { installIso, base: { _tag: "Blank" } })
    expect(result.installIso).toBe(installIso)
    expect(result.domain.installIso).toBe(installIso)
    expect(result.domain.config.boot.order).toEqual(["cdrom", "hd"])
  })

  test("installed persistent disk drops the ISO", () => {
    const result = plan({ ...isoBoot, ...persistent }, installedDisk)
    expect(result.installIso).toBeUndefined()
    expect(result.domain.installIso).toBeUndefined()
    expect(result.notes).toContain(
      "the persistent disk has an installed system, so the ISO is not attached (FORCE_ISO=1 attaches it)"
    )
  })

  test("dropped ISO leaves cdrom out of the boot order", () => {
    const result = plan({ ...isoBoot, ...persistent }, installedDisk)
    expect(result.domain.config.boot.order).toEqual(["hd"])
  })

  test("FORCE_ISO keeps the ISO on an installed disk", () => {
    const result = plan(
      { ...isoBoot, ...persistent, boot: { ...isoBoot.boot, forceIso: true } },
      installedDisk
    )
    expect(result.installIso).toBe(installIso)
    expect(result.domain.config.boot.order).toEqual(["cdrom", "hd"])
    expect(result.notes).toEqual([])
  })

  test("ISO kept without a reused disk", () => {
    const result = plan(isoBoot, { installIso, installed: true, base: { _tag: "Blank" } })
    expect(result.installIso).toBe(installIso)
  })
})

describe("planLaunch boot order", () => {
  const orderOf = (order: ReadonlyArray<BootDevice>, iso: string | undefined) =>
    plan({ boot: { order } }, { installIso: iso }).domain.config.boot.order

  const cases: ReadonlyArray<
    readonly [
      name: string,
      order: ReadonlyArray<BootDevice>,
      iso: string | undefined,
      expected: ReadonlyArray<BootDevice>
    ]
  > = [
    ["hd alone stays", ["hd"], undefined, ["hd"]],
    ["cdrom without an ISO becomes hd", ["cdrom"], undefined, ["hd"]],
    ["cdrom,hd without an ISO drops cdrom", ["cdrom", "hd"], undefined, ["hd"]],
    ["network alone gets hd first", ["network"], undefined, ["hd", "network"]],
    ["network,hd stays", ["network", "hd"], undefined, ["network", "hd"]],
    ["empty order becomes hd", [], undefined, ["hd"]],
    ["empty order with an ISO becomes hd", [], installIso, ["hd"]],
    ["cdrom,hd with an ISO stays", ["cdrom", "hd"], installIso, ["cdrom", "hd"]],
    ["cdrom alone with an ISO stays", ["cdrom"], installIso, ["cdrom"]]
  ]

  for (const [name, order, iso, expected] of cases) {
    test(name, () => {
      expect(orderOf(order, iso)).toEqual(expected)
    })
  }

  test("plan keeps the configured order in its config", () => {
    const result = plan({ boot: { order: ["cdrom"] } })
    expect(result.config.boot.order).toEqual(["cdrom"])
  })
})

describe("planLaunch domain inputs", () => {
  test("seed ISO only with a seed", () => {
    const config = makeConfig()
    const seed = { "meta-data": "", "user-data": "" }
    const withSeed = planLaunch(config, layout, makeFacts(), seed)
    const without = planLaunch(config, layout, makeFacts(), undefined)
    expect(withSeed.domain.seedIso).toBe(layout.seedIso)
    expect(without.domain.seedIso).toBeUndefined()
  })

  test("facts reach the domain inputs", () => {
    const result = plan(
      {},
      {
        accelerator: { accel: "tcg", reason: "/dev/kvm is missing" },
        passt: true,
        virtiofsReadonly: true,
        uuid: "0f0e0d0c-0b0a-8908-8706-050403020100"
      }
    )
    expect(result.domain.accel).toBe("tcg")
    expect(result.domain.passt).toBe(true)
    expect(result.domain.virtiofsReadonly).toBe(true)
    expect(result.domain.uuid).toBe("0f0e0d0c-0b0a-8908-8706-050403020100")
    expect(result.domain.workDisk).toEqual({ path: layout.workDisk, format: "qcow2" })
    expect(result.domain.serialLog).toBe(layout.serialLog)
  })

  test("UEFI firmware uses the VM's NVRAM", () => {
    const result = plan()
    expect(result.domain.firmware?.nvram).toBe(layout.nvram)
  })

  test("legacy boot has no firmware files", () => {
    const result = plan({ boot: { mode: "legacy" } })
    expect(result.domain.firmware).toBeUndefined()
  })

  test("render node only with GPU=intel", () => {
    const node = "/dev/dri/renderD128"
    const off = plan({}, { renderNode: node })
    const intel = plan({ devices: { gpu: "intel" } }, { renderNode: node })
    expect(off.domain.renderNode).toBeUndefined()
    expect(intel.domain.renderNode).toBe(node)
  })
})

describe("effectiveDiskIo", () => {
  const storageConfig = (cache: DiskCache, io: DiskIo): VmConfig =>
    makeConfig({ storage: { cache, io } })

  test("O_DIRECT filesystem keeps the settings", () => {
    const warnings: Array<string> = []
    const result = effectiveDiskIo(storageConfig("none", "native"), true, "ext4", warnings)
    expect(result).toEqual({ io: "native", cache: "none" })
    expect(warnings).toEqual([])
  })

  for (const [cache, io] of [
    ["none", "native"],
    ["none", "io_uring"],
    ["directsync", "native"],
    ["directsync", "threads"]
  ] as const) {
    test(`cache=${cache} io=${io} falls back without O_DIRECT`, () => {
      const warnings: Array<string> = []
      const result = effectiveDiskIo(storageConfig(cache, io), false, "tmpfs", warnings)
      // io_uring works without O_DIRECT; only native needs it.
      expect(result).toEqual({ io: io === "io_uring" ? "io_uring" : "threads", cache: "writeback" })
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain("on tmpfs")
      expect(warnings[0]).toContain("O_DIRECT")
      expect(warnings[0]).toContain(`instead of ${cache}/${io}`)
    })
  }

  for (const [cache, io] of [
    ["writeback", "threads"],
    ["writethrough", "threads"],
    ["unsafe", "io_uring"]
  ] as const) {
    test(`cache=${cache} io=${io} is kept without O_DIRECT`, () => {
      const warnings: Array<string> = []
      const result = effectiveDiskIo(storageConfig(cache, io), false, "tmpfs", warnings)
      expect(result).toEqual({ io, cache })
      expect(warnings).toEqual([])
    })
  }

  test("plan carries the fallback and its warning", () => {
    const result = plan({}, { directIo: false, filesystem: "ecryptfs" })
    expect(result.domain.diskCache).toBe("writeback")
    expect(result.domain.diskIo).toBe("threads")
    expect(result.warnings).toHaveLength(1)
    expect(result.warnings[0]).toContain("ecryptfs")
  })

  test("DISK_CACHE=directsync from the environment falls back", () => {
    const { config } = resolveValid({ DISK_CACHE: "directsync", DISK_IO: "native" })
    const warnings: Array<string> = []
    const result = effectiveDiskIo(config, false, "overlayfs", warnings)
    expect(config.storage.cache).toBe("directsync")
    expect(result).toEqual({ io: "threads", cache: "writeback" })
    expect(warnings[0]).toContain("overlayfs")
  })

  test("DISK_CACHE=writeback from the environment stays", () => {
    const { config } = resolveValid({ DISK_CACHE: "writeback" })
    const warnings: Array<string> = []
    const result = effectiveDiskIo(config, false, "tmpfs", warnings)
    expect(result).toEqual({ io: "threads", cache: "writeback" })
    expect(warnings).toEqual([])
  })
})

describe("droppedDeviceWarnings", () => {
  const kvm = { accel: "kvm", reason: "KVM ran a test guest" } as const
  const tcg = { accel: "tcg", reason: "/dev/kvm is missing" } as const

  test("GPU=intel without a render node", () => {
    const config = makeConfig({ graphics: { mode: "vnc" }, devices: { gpu: "intel" } })
    const warnings = droppedDeviceWarnings(config, { accelerator: kvm, renderNode: undefined })
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toStartWith("GPU=intel: no render node under /dev/dri")
  })

  test("GPU=intel with a render node", () => {
    const config = makeConfig({ graphics: { mode: "vnc" }, devices: { gpu: "intel" } })
    const renderNode = "/dev/dri/renderD128"
    expect(droppedDeviceWarnings(config, { accelerator: kvm, renderNode })).toEqual([])
  })

  test("HYPERV=1 under TCG", () => {
    const config = makeConfig({ devices: { hyperv: true } })
    const warnings = droppedDeviceWarnings(config, { accelerator: tcg, renderNode: undefined })
    expect(warnings).toEqual([
      "HYPERV=1: Hyper-V enlightenments need KVM, so this TCG guest runs without them"
    ])
  })

  test("HYPERV=1 under KVM", () => {
    const config = makeConfig({ devices: { hyperv: true } })
    expect(droppedDeviceWarnings(config, { accelerator: kvm, renderNode: undefined })).toEqual([])
  })
})
