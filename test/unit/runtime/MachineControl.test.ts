import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer, Logger } from "effect"
import { makeLayout } from "../../../src/domain/Layout.ts"
import type { DomainInputs } from "../../../src/libvirt/DomainInputs.ts"
import type { DomainDisk } from "../../../src/libvirt/DomainModel.ts"
import { serializeDomain } from "../../../src/libvirt/DomainXml.ts"
import { type DomainState, Libvirt } from "../../../src/libvirt/Libvirt.ts"
import {
  bmcDomain,
  MachineControl,
  mediaDriveTarget,
  type PowerState,
  powerStateOf
} from "../../../src/runtime/MachineControl.ts"
import type { LaunchPlan } from "../../../src/runtime/Plan.ts"
import { configurationTable, makeInputs, makeNetwork, makeNic } from "../libvirt/fixtures.ts"

const drive = (disks: ReadonlyArray<DomainDisk>) => disks.at(-1) as DomainDisk
const bootOrders = (inputs: DomainInputs, target: Parameters<typeof bmcDomain>[1]) => {
  const domain = bmcDomain(inputs, target, undefined)
  return {
    disks: domain.devices.disks.map((disk) => [disk.target.dev, disk.boot?.order]),
    nics: (domain.qemuCommandline?.args ?? [])
      .filter((arg) => arg.includes('"netdev"'))
      .map((arg) => JSON.parse(arg).bootindex)
  }
}

describe("bmcDomain", () => {
  test("adds an empty CD-ROM drive after the seed", () => {
    const domain = bmcDomain(makeInputs(), undefined, undefined)
    const cdroms = domain.devices.disks.filter((disk) => disk.device === "cdrom")
    expect(cdroms.map((disk) => disk.target.dev)).toEqual(["sda", "sdb"])
    expect(drive(domain.devices.disks)).toMatchObject({
      device: "cdrom",
      source: { file: "" },
      readonly: true,
      target: { dev: "sdb", bus: "scsi" },
      address: { type: "drive", controller: 0, bus: 0, target: 1, unit: 0 }
    })
    expect(drive(domain.devices.disks).boot).toBeUndefined()
    expect(mediaDriveTarget(domain)).toBe("sdb")
  })

  test("holds the inserted medium", () => {
    const domain = bmcDomain(makeInputs(), undefined, "/data/base/media.iso")
    expect(drive(domain.devices.disks).source).toEqual({ file: "/data/base/media.iso" })
  })

  test("boot orders for each target", () => {
    const inputs = makeInputs()
    expect(bootOrders(inputs, undefined)).toEqual({
      disks: [
        ["vda", 1],
        ["sda", undefined],
        ["sdb", undefined]
      ],
      nics: [undefined]
    })
    expect(bootOrders(inputs, "Cd")).toEqual({
      disks: [
        ["vda", 2],
        ["sda", undefined],
        ["sdb", 1]
      ],
      nics: [undefined]
    })
    expect(bootOrders(inputs, "Pxe")).toEqual({
      disks: [
        ["vda", 2],
        ["sda", undefined],
        ["sdb", undefined]
      ],
      nics: [1]
    })
    expect(bootOrders(inputs, "Hdd")).toEqual(bootOrders(inputs, undefined))
    expect(bootOrders(inputs, "None")).toEqual(bootOrders(inputs, undefined))
  })

  test("Cd moves a slirp NIC's boot index down too", () => {
    const inputs = makeInputs({
      config: {
        boot: { order: ["network", "hd"] },
        network: makeNetwork([makeNic({ boot: true })])
      }
    })
    expect(bootOrders(inputs, undefined).nics).toEqual([1])
    expect(bootOrders(inputs, "Cd")).toEqual({
      disks: [
        ["vda", 3],
        ["sda", undefined],
        ["sdb", 1]
      ],
      nics: [2]
    })
  })

  test("Hdd moves the disk before the network", () => {
    const inputs = makeInputs({ config: { boot: { order: ["network", "hd"] } } })
    expect(bootOrders(inputs, "Hdd").disks[0]).toEqual(["vda", 1])
    expect(bootOrders(inputs, "Hdd").nics).toEqual([2])
  })

  test("the pc machine gets an IDE drive", () => {
    const domain = bmcDomain(
      makeInputs({ config: { boot: { mode: "legacy", machine: "pc" } }, firmware: undefined }),
      undefined,
      undefined
    )
    expect(drive(domain.devices.disks).target).toEqual({ dev: "hdb", bus: "ide" })
  })

  test("adds the SCSI controller a lone drive needs", () => {
    const domain = bmcDomain(makeInputs({ seedIso: undefined }), undefined, undefined)
    expect(drive(domain.devices.disks).target.dev).toBe("sda")
    expect(domain.devices.controllers.some((controller) => controller.type === "scsi")).toBe(true)
  })
})

describe("bmcDomain against libvirt's schema", () => {
  let workDir = ""
  beforeAll(() => {
    workDir = mkdtempSync(join(tmpdir(), "vm-runner-bmc-xml-"))
  })
  afterAll(() => rmSync(workDir, { recursive: true, force: true }))

  for (const [name, overrides] of configurationTable) {
    test(name, () => {
      const path = join(workDir, `${name}.xml`)
      writeFileSync(path, serializeDomain(bmcDomain(makeInputs(overrides), "Cd", "/m.iso")))
      const result = Bun.spawnSync(["virt-xml-validate", path, "domain"])
      expect(`${result.stdout}${result.stderr}`.trim()).toBe(`${path} validates`)
    })
  }
})

describe("powerStateOf", () => {
  const cases: ReadonlyArray<readonly [DomainState | undefined, PowerState]> = [
    ["running", "On"],
    ["paused", "On"],
    ["in shutdown", "PoweringOff"],
    ["shut off", "Off"],
    ["crashed", "Off"],
    [undefined, "Off"]
  ]
  for (const [state, power] of cases) {
    test(`${state} is ${power}`, () => expect(powerStateOf(state)).toBe(power))
  }
})

/** libvirt in memory: a domain whose state the fake's operations change, and their argv. */
const fakeLibvirt = (initial: DomainState) => {
  const record = {
    state: initial as DomainState,
    calls: [] as Array<string>,
    defined: [] as Array<string>
  }
  const act = (call: string, next?: DomainState) =>
    Effect.sync(() => {
      record.calls.push(call)
      if (next !== undefined) record.state = next
    })
  const libvirt = Libvirt.of({
    uri: "qemu:///system",
    virsh: (_operation, _domain, args) => act(args.join(" ")).pipe(Effect.as("")),
    ping: () => Effect.succeed(true),
    state: () => Effect.sync(() => record.state),
    define: (xmlPath) =>
      Effect.sync(() => {
        record.calls.push("define")
        record.defined.push(readFileSync(xmlPath, "utf8"))
      }),
    undefine: () => act("undefine"),
    start: () => act("start", "running"),
    shutdown: (_domain, mode) => act(`shutdown ${mode}`),
    destroy: () => act("destroy", "shut off"),
    dumpXml: () => Effect.succeed(""),
    capabilities: () => Effect.succeed(""),
    domainCapabilities: () => Effect.succeed("")
  })
  return { record, libvirt }
}

const makePlan = (root: string): LaunchPlan => {
  const layout = makeLayout(root, "testvm")
  mkdirSync(layout.vmDir, { recursive: true })
  const domain = makeInputs()
  return {
    config: domain.config,
    layout,
    workDisk: { path: layout.workDisk, action: { _tag: "Reuse", growTo: undefined } },
    extraDisks: [],
    seed: undefined,
    installIso: undefined,
    domain,
    notes: [],
    warnings: []
  }
}

describe("MachineControl", () => {
  let root = ""
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "vm-runner-machine-"))
  })
  afterAll(() => rmSync(root, { recursive: true, force: true }))

  const withMachine = <A>(
    initial: DomainState,
    use: (machine: MachineControl["Service"]) => Effect.Effect<A, unknown>
  ) => {
    const fake = fakeLibvirt(initial)
    const program = Effect.gen(function* () {
      return yield* use(yield* MachineControl)
    }).pipe(
      Effect.provide(MachineControl.layer(makePlan(root))),
      Effect.provide(Layer.mergeAll(Layer.succeed(Libvirt, fake.libvirt), Logger.layer([])))
    )
    return Effect.runPromise(program).then((value) => ({ value, ...fake.record }))
  }

  test("power-on defines, then starts", async () => {
    const { calls, defined } = await withMachine("shut off", (machine) => machine.powerOn())
    expect(calls).toEqual(["define", "start"])
    expect(defined[0]).toContain("<source file=''/>")
  })

  test("power-on of a running guest does nothing", async () => {
    const { calls } = await withMachine("running", (machine) => machine.powerOn())
    expect(calls).toEqual([])
  })

  test("a one-time override applies once", async () => {
    const { calls, defined, value } = await withMachine("shut off", (machine) =>
      Effect.gen(function* () {
        yield* machine.setBootOverride({ enabled: "Once", target: "Cd" })
        yield* machine.powerOn()
        return yield* machine.bootOverride()
      })
    )
    expect(calls).toEqual(["define", "start", "define"])
    expect(defined[0]).toMatch(
      /<source file=''\/>\s*<target dev='sdb' bus='scsi'\/>\s*<boot order='1'\/>/
    )
    expect(defined[1]).not.toMatch(/<target dev='sdb' bus='scsi'\/>\s*<boot order/)
    expect(value).toEqual({ enabled: "Disabled", target: "None" })
  })

  test("a continuous override stays", async () => {
    const { value } = await withMachine("shut off", (machine) =>
      Effect.gen(function* () {
        yield* machine.setBootOverride({ enabled: "Continuous", target: "Pxe" })
        yield* machine.powerOn()
        return yield* machine.bootOverride()
      })
    )
    expect(value).toEqual({ enabled: "Continuous", target: "Pxe" })
  })

  test("ForceRestart resets, or power-cycles for an override", async () => {
    const plain = await withMachine("running", (machine) => machine.forceRestart())
    expect(plain.calls).toEqual(["reset testvm"])
    const cycled = await withMachine("running", (machine) =>
      Effect.gen(function* () {
        yield* machine.setBootOverride({ enabled: "Once", target: "Pxe" })
        yield* machine.forceRestart()
      })
    )
    expect(cycled.calls).toEqual(["destroy", "define", "start", "define"])
  })

  test("GracefulRestart reboots through ACPI", async () => {
    const { calls } = await withMachine("running", (machine) => machine.gracefulRestart())
    expect(calls).toEqual(["reboot testvm --mode acpi"])
  })

  test("ForceOff and GracefulShutdown of a guest that is off do nothing", async () => {
    const { calls } = await withMachine("shut off", (machine) =>
      Effect.gen(function* () {
        yield* machine.forceOff()
        yield* machine.gracefulShutdown()
      })
    )
    expect(calls).toEqual([])
  })

  test("media change live while running, in the definition while off", async () => {
    const media = { image: "http://h/a.iso", path: "/data/base/a.iso" }
    const running = await withMachine("running", (machine) =>
      Effect.gen(function* () {
        yield* machine.insertMedia(media)
        yield* machine.ejectMedia()
        return yield* machine.media()
      })
    )
    expect(running.calls).toEqual([
      "change-media testvm sdb /data/base/a.iso --update --force --live --config",
      "change-media testvm sdb --eject --force --live --config"
    ])
    expect(running.value).toBeUndefined()
    const off = await withMachine("shut off", (machine) =>
      Effect.gen(function* () {
        yield* machine.insertMedia(media)
        yield* machine.powerOn()
        return yield* machine.media()
      })
    )
    expect(off.calls[0]).toBe("change-media testvm sdb /data/base/a.iso --update --force --config")
    expect(off.defined[0]).toContain("<source file='/data/base/a.iso'/>")
    expect(off.value).toEqual(media)
  })
})
