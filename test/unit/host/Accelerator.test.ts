import { describe, expect, test } from "bun:test"
import { Effect, Layer } from "effect"
import { hostArch } from "../../../src/domain/Arch.ts"
import {
  chooseAccelerator,
  chooseAcceleratorCached,
  probeArgv,
  qemuBinary
} from "../../../src/host/Accelerator.ts"
import { Exec } from "../../../src/process/Exec.ts"
import { type ConfigOverrides, makeConfig } from "../libvirt/fixtures.ts"

const argvOf = (config: ConfigOverrides) => probeArgv(makeConfig(config), "/tmp/seabios.log")

/** The value after `flag` in argv. */
const optionOf = (argv: ReadonlyArray<string>, flag: string) => argv[argv.indexOf(flag) + 1]

/** An Exec that records every argv and runs nothing. */
const recordingExec = (calls: Array<ReadonlyArray<string>>) =>
  Layer.succeed(
    Exec,
    Exec.of({
      run: (argv) =>
        Effect.sync(() => {
          calls.push(argv)
          return { exitCode: 0, stdout: new Uint8Array(), stderr: "", text: "" }
        })
    })
  )

const aarch64Guest = {
  arch: "aarch64",
  boot: { machine: "virt" }
} as const satisfies ConfigOverrides

describe("probeArgv", () => {
  test("host passthrough becomes -cpu host", () => {
    expect(optionOf(argvOf({ devices: { cpuModel: "host" } }), "-cpu")).toBe("host")
  })

  test("host-passthrough in any case becomes -cpu host", () => {
    expect(optionOf(argvOf({ devices: { cpuModel: "Host-Passthrough" } }), "-cpu")).toBe("host")
  })

  test("named model passes through", () => {
    expect(optionOf(argvOf({ devices: { cpuModel: "Skylake-Client" } }), "-cpu")).toBe(
      "Skylake-Client"
    )
  })

  test("q35 machine under KVM", () => {
    expect(optionOf(argvOf({ boot: { machine: "q35" } }), "-machine")).toBe("q35,accel=kvm")
  })

  test("pc machine under KVM", () => {
    expect(optionOf(argvOf({ boot: { machine: "pc" } }), "-machine")).toBe("pc,accel=kvm")
  })

  test("x86_64 binary", () => {
    expect(argvOf({})[0]).toBe("qemu-system-x86_64")
  })

  test("debug console writes to the log", () => {
    const argv = argvOf({})
    expect(optionOf(argv, "-chardev")).toBe("file,id=probe,path=/tmp/seabios.log")
    expect(optionOf(argv, "-device")).toBe("isa-debugcon,iobase=0x402,chardev=probe")
  })

  test("exits instead of rebooting", () => {
    const argv = argvOf({})
    expect(argv).toContain("-no-reboot")
    expect(optionOf(argv, "-boot")).toBe("strict=on,reboot-timeout=0")
  })
})

describe("qemuBinary", () => {
  test("aarch64 binary", () => {
    expect(qemuBinary("aarch64")).toBe("qemu-system-aarch64")
  })
})

describe("chooseAccelerator", () => {
  test.skipIf(hostArch() !== "x86_64")(
    "aarch64 guest on x86_64 is TCG without probing",
    async () => {
      const calls: Array<ReadonlyArray<string>> = []
      const choice = await Effect.runPromise(
        chooseAccelerator(makeConfig(aarch64Guest)).pipe(Effect.provide(recordingExec(calls)))
      )
      expect(choice.accel).toBe("tcg")
      expect(choice.reason).toBe("KVM cannot run aarch64 guests on a x86_64 host")
      expect(calls).toEqual([])
    }
  )
})

describe("chooseAcceleratorCached", () => {
  test.skipIf(hostArch() !== "x86_64")("aarch64 guest without writing the cache", async () => {
    const calls: Array<ReadonlyArray<string>> = []
    const cacheFile = "/nonexistent/vm-runner-test/kvm-probe.json"
    const choice = await Effect.runPromise(
      chooseAcceleratorCached(makeConfig(aarch64Guest), cacheFile, { write: false }).pipe(
        Effect.provide(recordingExec(calls))
      )
    )
    expect(choice.accel).toBe("tcg")
    expect(calls).toEqual([])
  })
})
