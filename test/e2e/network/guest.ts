/**
 * Reading a running test guest through guest-exec: command output as text, the NICs under
 * /sys/class/net, and background servers started as transient systemd units.
 */
import { binary, guestExec } from "../support/harness.ts"

/** Runs `command` under /bin/sh in the guest and returns its stdout; throws on a failure. */
export const guestText = async (domain: string, command: string): Promise<string> => {
  const result = await guestExec(["--domain", domain, command])
  if (result.exitCode !== 0) {
    throw new Error(`guest command failed (${result.exitCode}): ${command}\n${result.stderr}`)
  }
  return result.stdout.toString()
}

/** Runs `command` in the guest and returns its exit code and output, failures included. */
export const guestRun = async (domain: string, command: string) => {
  const result = await guestExec(["--domain", domain, command])
  return { exitCode: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr }
}

/** One network interface of the guest, as /sys/class/net reports it. */
export interface GuestNic {
  readonly name: string
  readonly mac: string
  readonly mtu: number
  /** The kernel driver bound to the NIC's PCI device, such as `virtio_net` or `vmxnet3`. */
  readonly driver: string
  readonly operstate: string
}

/**
 * Lists the guest's NICs that sit on a device (loopback has none). virtio-net's driver link
 * points at the virtio bus device, whose driver is `virtio_net`; other models have their PCI
 * driver there directly.
 */
export const guestNics = async (domain: string): Promise<Array<GuestNic>> => {
  const script = [
    "for dev in /sys/class/net/*; do",
    '  [ -e "$dev/device" ] || continue',
    '  echo "$(basename "$dev") $(cat "$dev/address") $(cat "$dev/mtu")' +
      ' $(basename "$(readlink "$dev/device/driver")") $(cat "$dev/operstate")"',
    "done"
  ].join("\n")
  const text = await guestText(domain, script)
  return text
    .trim()
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const [name = "", mac = "", mtu = "0", driver = "", operstate = ""] = line.split(" ")
      return { name, mac, mtu: Number(mtu), driver, operstate }
    })
}

/** Finds the guest NIC with `mac`, or throws with the NICs the guest has. */
export const nicByMac = (nics: ReadonlyArray<GuestNic>, mac: string): GuestNic => {
  const nic = nics.find((candidate) => candidate.mac === mac.toLowerCase())
  if (nic === undefined) {
    throw new Error(`the guest has no NIC with MAC ${mac}: ${JSON.stringify(nics)}`)
  }
  return nic
}

/** Returns the IPv4 addresses of a guest interface. */
export const guestIpv4 = async (domain: string, device: string): Promise<Array<string>> => {
  const text = await guestText(domain, `ip -4 -o addr show dev ${device}`)
  return [...text.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)].map((match) => match[1] ?? "")
}

/**
 * Starts `command` in the guest as a transient systemd service, which outlives the guest-exec
 * call (the guest agent waits for a plain background job's output pipes to close).
 */
export const startGuestService = async (domain: string, unit: string, command: string) => {
  await guestText(domain, `systemd-run --unit=${unit} --service-type=exec sh -c '${command}'`)
}

/** Reads the configuration as vm-runner resolves it (`--show-config --json`). */
export const resolvedConfig = (env: Record<string, string>) => {
  const result = Bun.spawnSync([binary, "--show-config", "--json"], {
    env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...env }
  })
  if (result.exitCode !== 0) throw new Error(`--show-config failed: ${result.stderr.toString()}`)
  return JSON.parse(result.stdout.toString())
}
