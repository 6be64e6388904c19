/**
 * Network boot, seen on the serial console: IPXE_ENABLE=1 with IPXE_ROM_PATH makes NIC 1 boot
 * first through that iPXE ROM, and NETWORK2_BOOT=1 makes NIC 2 the NIC the firmware boots
 * from. Each run stops once the serial log shows the attempt. Without a boot server, the
 * firmware (OVMF) then tries its own PXE and HTTP boot over IPv4 and IPv6 on the NIC, which
 * takes minutes under TCG, and the other tests already prove the disk boot.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { copyFileSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { spawnSync } from "bun"
import { resolvedConfig } from "./network/guest.ts"
import {
  freePort,
  guestImage,
  makeWorkDir,
  removeDir,
  reportTime,
  VmRun
} from "./support/harness.ts"

/** Covers the firmware start and one iPXE DHCP exchange under TCG: minutes when loaded. */
const attemptTimeoutMs = 10 * 60_000
/** The guest sits in firmware and ignores the power button, so the stop is a hard one. */
const shutdownTimeoutSeconds = 5
/** The ROM QEMU's virtio-net uses, copied so the domain can only have it from IPXE_ROM_PATH. */
const ipxeRomSource = "/usr/lib/ipxe/qemu/efi-virtio.rom"

let workDir: string
const names: Array<string> = []

beforeAll(() => {
  workDir = makeWorkDir("net-boot")
})

afterAll(() => {
  for (const name of names) {
    spawnSync(["virsh", "-c", "qemu:///system", "destroy", name], { stderr: "ignore" })
    spawnSync(["virsh", "-c", "qemu:///system", "undefine", name, "--nvram"], { stderr: "ignore" })
  }
  if (workDir !== undefined) removeDir(workDir)
})

const baseEnv = async (name: string, extra: Record<string, string>) => {
  names.push(name)
  return {
    BOOT_FROM: guestImage(),
    DATA_DIR: join(workDir, "data"),
    GUEST_NAME: name,
    PERSIST: "0",
    MEMORY: "1024",
    CPUS: "2",
    NO_CONSOLE: "1",
    SSH_PORT: String(await freePort()),
    SHUTDOWN_TIMEOUT: String(shutdownTimeoutSeconds),
    ...extra
  }
}

const vmFile = (name: string, file: string) => join(workDir, "data", "vms", name, file)

/** Reads the serial console log until it matches `pattern`; fails if vm-runner exits first. */
const waitForSerial = async (run: VmRun, name: string, pattern: RegExp): Promise<string> => {
  const deadline = performance.now() + attemptTimeoutMs
  while (performance.now() < deadline) {
    let log = ""
    try {
      log = readFileSync(vmFile(name, "serial.log"), "latin1")
    } catch {
      // libvirt creates the log when QEMU starts.
    }
    if (pattern.test(log)) return log
    if (run.process.exitCode !== null) {
      throw new Error(`vm-runner exited (${run.process.exitCode}):\n${run.stderr}`)
    }
    await Bun.sleep(1000)
  }
  throw new Error(`the serial log of ${name} never matched ${pattern}:\n${run.stderr}`)
}

describe("IPXE_ENABLE with IPXE_ROM_PATH", () => {
  const name = `net-ipxe-${process.pid}`
  let log: string
  let xml: string
  let mac: string

  beforeAll(async () => {
    const started = performance.now()
    const romPath = join(workDir, "vmrt-ipxe.rom")
    copyFileSync(ipxeRomSource, romPath)
    const env = await baseEnv(name, { IPXE_ENABLE: "1", IPXE_ROM_PATH: romPath })
    mac = resolvedConfig(env).network.nics[0].mac
    const run = new VmRun(env)
    try {
      log = await waitForSerial(run, name, /Nothing to boot/)
      xml = readFileSync(vmFile(name, "domain.xml"), "utf8")
      reportTime("iPXE: start to the first network boot attempt", started)
    } finally {
      await run.stop("SIGTERM")
    }
  }, attemptTimeoutMs + 120_000)

  test("NIC 1 loads the ROM and boots first", () => {
    const romPath = join(workDir, "vmrt-ipxe.rom")
    if (xml.includes("<backend type='passt'/>")) {
      expect(xml).toContain(`<rom file='${romPath}'/>`)
      expect(xml).toContain("<boot order='1'/>")
    } else {
      // Without passt the NAT NIC is a QEMU -device in JSON form inside <qemu:commandline>.
      expect(xml).toContain(`"romfile":"${romPath}"`)
      expect(xml).toContain('"bootindex":1')
    }
  })

  test("the serial console shows the iPXE banner", () => {
    // The banner spans two lines with colour escapes between the version and the name.
    expect(log).toMatch(/iPXE \d+\.\d+\.\d+/)
    expect(log).toContain("Open Source Network Boot Firmware")
  })

  test("iPXE configures NIC 1 over DHCP", () => {
    expect(log).toContain(`Configuring (net0 ${mac})`)
    expect(log).toMatch(/net0: \d+\.\d+\.\d+\.\d+\/\d+\.\d+\.\d+\.\d+/)
  })
})

describe("NETWORK2_BOOT", () => {
  const name = `net-nic2boot-${process.pid}`
  let log: string
  let macs: { readonly first: string; readonly second: string }

  beforeAll(async () => {
    const started = performance.now()
    const env = await baseEnv(name, {
      NETWORK2_MODE: "nat",
      NETWORK2_BOOT: "1",
      BOOT_ORDER: "network,hd"
    })
    const nics = resolvedConfig(env).network.nics
    macs = { first: nics[0].mac, second: nics[1].mac }
    const run = new VmRun(env)
    try {
      log = await waitForSerial(run, name, /Nothing to boot/)
      reportTime("NETWORK2_BOOT: start to the network boot attempt", started)
    } finally {
      await run.stop("SIGTERM")
    }
  }, attemptTimeoutMs + 120_000)

  test("the firmware boots from NIC 2", () => {
    expect(log).toContain(`Configuring (net0 ${macs.second})`)
    expect(log).toMatch(/net0: \d+\.\d+\.\d+\.\d+\/\d+\.\d+\.\d+\.\d+/)
  })

  test("NIC 1 is not tried first", () => {
    expect(log).not.toContain(`Configuring (net0 ${macs.first})`)
  })
})
