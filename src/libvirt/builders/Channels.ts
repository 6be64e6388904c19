import type { DomainInputs } from "../DomainInputs.ts"
import type { DomainChannel, DomainConsole, DomainSerial } from "../DomainModel.ts"

/** The virtio-serial port name qemu-guest-agent opens in the guest. */
export const guestAgentChannelName = "org.qemu.guest_agent.0"

export interface ConsoleDevices {
  readonly serials: ReadonlyArray<DomainSerial>
  readonly consoles: ReadonlyArray<DomainConsole>
  readonly channels: ReadonlyArray<DomainChannel>
}

/**
 * Builds the serial port, its console and the guest agent channel. Cloud images print their
 * boot log and login prompt on the first serial port (ttyS0 on x86, ttyAMA0 on aarch64), so
 * the console is that port rather than a virtio console. virtlogd copies everything the port
 * prints to the serial log, which starts empty each time the domain starts. libvirt chooses
 * the agent's socket path, because the agent is reached through libvirt.
 */
export const buildConsoleDevices = (inputs: DomainInputs): ConsoleDevices => ({
  serials: [{ type: "pty", log: { file: inputs.serialLog, append: "off" }, target: { port: 0 } }],
  consoles: [{ type: "pty", target: { type: "serial", port: 0 } }],
  channels: [
    {
      type: "unix",
      source: { mode: "bind" },
      target: { type: "virtio", name: guestAgentChannelName }
    }
  ]
})
