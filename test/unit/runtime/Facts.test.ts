import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  firmwareFor,
  firmwareImages,
  missingFirmware,
  readHostCpu,
  supportsPasst
} from "../../../src/runtime/Facts.ts"

/** The first processor of an AMD EPYC guest's /proc/cpuinfo, flags shortened. */
const amdCpuinfo = `processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7763 64-Core Processor
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep svm npt lbrv nrip_save avic v_vmsave_vmload
bugs\t\t: sysret_ss_attrs spectre_v1 spectre_v2
bogomips\t: 4890.81

processor\t: 1
vendor_id\t: AuthenticAMD
flags\t\t: fpu second_processor_only
`

/** The first processor of an Intel host's /proc/cpuinfo with the `vmx flags` line of Linux 5.8+. */
const intelCpuinfo = `processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 85
model name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic vmx smx est tm2 ssse3 hypervisor
vmx flags\t: vnmi preemption_timer posted_intr invvpid ept_x_only ept_ad flexpriority apicv tsc_offset vtpr mtf vapic ept vpid unrestricted_guest
bugs\t\t: cpu_meltdown spectre_v1
`

const passtCapabilities = `<domainCapabilities>
  <path>/usr/bin/qemu-system-x86_64</path>
  <devices>
    <interface supported='yes'>
      <enum name='backendType'>
        <value>default</value>
        <value>passt</value>
      </enum>
    </interface>
  </devices>
</domainCapabilities>
`

const defaultOnlyCapabilities = passtCapabilities.replace("        <value>passt</value>\n", "")

/** libvirt 9.0 lists no interface backends at all. */
const libvirt9Capabilities = `<domainCapabilities>
  <path>/usr/bin/qemu-system-x86_64</path>
  <devices>
    <disk supported='yes'>
      <enum name='diskDevice'>
        <value>disk</value>
        <value>cdrom</value>
      </enum>
    </disk>
  </devices>
</domainCapabilities>
`

let directory: string
let passtBinary: string
let missingBinary: string

beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), "vm-runner-facts-"))
  passtBinary = join(directory, "passt")
  missingBinary = join(directory, "missing-passt")
  writeFileSync(passtBinary, "")
})

afterAll(() => rmSync(directory, { recursive: true, force: true }))

describe("supportsPasst", () => {
  test("passt backend with the binary", () => {
    expect(supportsPasst(passtCapabilities, [missingBinary, passtBinary])).toBe(true)
  })

  test("passt backend in double quotes", () => {
    const doubleQuoted = passtCapabilities.replace("'backendType'", '"backendType"')
    expect(supportsPasst(doubleQuoted, [passtBinary])).toBe(true)
  })

  test("passt backend without the binary", () => {
    expect(supportsPasst(passtCapabilities, [missingBinary])).toBe(false)
  })

  test("default backend only", () => {
    expect(supportsPasst(defaultOnlyCapabilities, [passtBinary])).toBe(false)
  })

  test("no backend types on libvirt 9", () => {
    expect(supportsPasst(libvirt9Capabilities, [passtBinary])).toBe(false)
  })

  test("empty capabilities", () => {
    expect(supportsPasst("", [passtBinary])).toBe(false)
  })
})

describe("readHostCpu", () => {
  test("AMD vendor", () => {
    expect(readHostCpu(amdCpuinfo).vendor).toBe("amd")
  })

  test("AMD virtualization flags", () => {
    const flags = readHostCpu(amdCpuinfo).flags
    expect(flags.has("svm")).toBe(true)
    expect(flags.has("npt")).toBe(true)
    expect(flags.has("avic")).toBe(true)
  })

  test("flags of the first processor only", () => {
    expect(readHostCpu(amdCpuinfo).flags.has("second_processor_only")).toBe(false)
  })

  test("bugs line is not read as flags", () => {
    expect(readHostCpu(amdCpuinfo).flags.has("spectre_v1")).toBe(false)
  })

  test("Intel vendor", () => {
    expect(readHostCpu(intelCpuinfo).vendor).toBe("intel")
  })

  test("Intel vmx flags line is read", () => {
    const flags = readHostCpu(intelCpuinfo).flags
    expect(flags.has("vmx")).toBe(true)
    expect(flags.has("ept")).toBe(true)
    expect(flags.has("apicv")).toBe(true)
    expect(flags.has("unrestricted_guest")).toBe(true)
  })

  test("no empty flag", () => {
    expect(readHostCpu(amdCpuinfo).flags.has("")).toBe(false)
  })

  test("unknown vendor", () => {
    const cpu = readHostCpu("processor\t: 0\nvendor_id\t: CentaurHauls\nflags\t\t: fpu\n")
    expect(cpu.vendor).toBe("other")
    expect([...cpu.flags]).toEqual(["fpu"])
  })

  test("empty cpuinfo", () => {
    const cpu = readHostCpu("")
    expect(cpu.vendor).toBe("other")
    expect(cpu.flags.size).toBe(0)
  })
})

describe("firmwareFor", () => {
  const nvram = "/var/lib/vm-runner/vms/testvm/nvram.fd"

  test("x86_64 UEFI", () => {
    expect(firmwareFor("x86_64", "uefi", nvram)).toEqual({
      loader: "/usr/share/OVMF/OVMF_CODE_4M.fd",
      varsTemplate: "/usr/share/OVMF/OVMF_VARS_4M.fd",
      nvram,
      secureBoot: false
    })
  })

  test("x86_64 Secure Boot", () => {
    expect(firmwareFor("x86_64", "secure", nvram)).toEqual({
      loader: "/usr/share/OVMF/OVMF_CODE_4M.ms.fd",
      varsTemplate: "/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
      nvram,
      secureBoot: true
    })
  })

  test("aarch64 UEFI", () => {
    expect(firmwareFor("aarch64", "uefi", nvram)).toEqual({
      loader: "/usr/share/AAVMF/AAVMF_CODE.fd",
      varsTemplate: "/usr/share/AAVMF/AAVMF_VARS.fd",
      nvram,
      secureBoot: false
    })
  })

  test("legacy boot has no firmware files", () => {
    expect(firmwareFor("x86_64", "legacy", nvram)).toBeUndefined()
  })

  test("aarch64 Secure Boot has no firmware files", () => {
    expect(firmwareFor("aarch64", "secure", nvram)).toBeUndefined()
  })
})

describe("missingFirmware", () => {
  test("legacy boot misses nothing", () => {
    expect(missingFirmware(undefined)).toEqual([])
  })

  test("lists files that do not exist", () => {
    const firmware = {
      loader: passtBinary,
      varsTemplate: missingBinary,
      nvram: join(directory, "nvram.fd"),
      secureBoot: false
    }
    expect(missingFirmware(firmware)).toEqual([missingBinary])
  })

  test("table covers each architecture's UEFI", () => {
    expect(Object.keys(firmwareImages).sort()).toEqual([
      "aarch64/uefi",
      "x86_64/secure",
      "x86_64/uefi"
    ])
  })
})
