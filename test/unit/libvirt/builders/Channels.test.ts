import { describe, expect, test } from "bun:test"
import { buildConsoleDevices } from "../../../../src/libvirt/builders/Channels.ts"
import { makeInputs, vmDir } from "../fixtures.ts"

describe("buildConsoleDevices", () => {
  const devices = buildConsoleDevices(makeInputs())

  test("serial port logs to the VM's file", () => {
    expect(devices.serials).toEqual([
      { type: "pty", log: { file: `${vmDir}/serial.log`, append: "off" }, target: { port: 0 } }
    ])
  })

  test("console is the serial port", () => {
    expect(devices.consoles).toEqual([{ type: "pty", target: { type: "serial", port: 0 } }])
  })

  test("guest agent channel lets libvirt pick the path", () => {
    expect(devices.channels).toEqual([
      {
        type: "unix",
        source: { mode: "bind" },
        target: { type: "virtio", name: "org.qemu.guest_agent.0" }
      }
    ])
  })
})
