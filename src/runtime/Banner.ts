import { cpus, freemem, release, totalmem } from "node:os"
import { defaultGuestPassword } from "../config/areas/Boot.ts"
import { formatByteSize, humanByteSize } from "../domain/ByteSize.ts"
import type { VmConfig } from "../domain/Config.ts"
import type { AcceleratorChoice } from "../host/Accelerator.ts"
import { type ContainerRuntime, describeRuntime } from "../host/ContainerRuntime.ts"
import type { HostFacts } from "../host/HostFacts.ts"
import type { LaunchPlan } from "./Plan.ts"

/** Renders a titled block of `label  value` rows, labels padded to one width. */
export const renderBlock = (
  title: string,
  rows: ReadonlyArray<readonly [string, string]>
): string => {
  const width = Math.max(...rows.map(([label]) => label.length))
  return [title, ...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`)].join("\n")
}

export const hostBlock = (
  host: HostFacts,
  dataRoot: string,
  accelerator: AcceleratorChoice,
  runtime: ContainerRuntime
): string => {
  const model = cpus()[0]?.model?.trim() ?? "unknown"
  const free = host.freeBytes(dataRoot)
  return renderBlock("host", [
    ["CPU", `${model} (${cpus().length} CPUs, ${host.usableCpus()} usable here)`],
    [
      "memory",
      `${humanByteSize(host.availableMemoryMiB() * 2 ** 20)} available of ${humanByteSize(totalmem())} (${humanByteSize(freemem())} free)`
    ],
    ["storage", `${free === undefined ? "unknown" : humanByteSize(free)} free at ${dataRoot}`],
    [
      "KVM",
      accelerator.accel === "kvm"
        ? `in use (${accelerator.reason})`
        : `not used: ${accelerator.reason}`
    ],
    ["kernel", release()],
    ["container", describeRuntime(runtime)]
  ])
}

const source = (config: VmConfig): string => {
  const from = config.boot.from
  switch (from._tag) {
    case "Catalogue":
      return config.distro.name
    case "Blank":
      return "blank disk"
    case "Url":
      return from.url
    case "Path":
      return from.path
  }
}

export const vmBlock = (plan: LaunchPlan): string => {
  const { config, domain } = plan
  const features = [
    config.boot.tpm ? "TPM" : undefined,
    config.devices.hyperv ? "Hyper-V" : undefined,
    config.storage.ioThread ? "IOThread" : undefined,
    config.devices.balloon ? "balloon" : undefined,
    config.devices.rng ? "RNG" : undefined,
    config.devices.usb ? "USB" : undefined,
    config.devices.gpu === "intel" ? "GPU intel" : undefined
  ].filter((feature) => feature !== undefined)
  const rows: Array<readonly [string, string]> = [
    ["image", source(config)],
    [
      "resources",
      `${config.cpus} vCPU, ${config.memoryMiB} MiB, ${formatByteSize(config.storage.diskSize)} ${config.storage.bus} disk`
    ],
    [
      "boot",
      `${config.boot.mode === "legacy" ? "BIOS" : config.boot.mode === "secure" ? "UEFI Secure Boot" : "UEFI"}, ` +
        `${config.boot.machine}, ${domain.accel === "kvm" ? "KVM" : "TCG"}, order ${domain.config.boot.order.join(",")}`
    ],
    ["devices", features.length === 0 ? "none" : features.join(", ")]
  ]
  const extras = [
    ...config.storage.extraDisks.map((disk) => `disk${disk.index} ${formatByteSize(disk.size)}`),
    ...config.storage.blockDevices.map((device) => device.path)
  ]
  if (extras.length > 0) rows.push(["disks", extras.join(", ")])
  for (const nic of config.network.nics) {
    const where =
      nic.mode === "bridge"
        ? ` on ${nic.bridge}`
        : nic.mode === "direct"
          ? ` on ${nic.directDevice}`
          : domain.passt
            ? " through passt"
            : " through QEMU user networking"
    rows.push([
      `NIC ${nic.index}`,
      `${nic.mode}${where} (${nic.model}) ${nic.mac}${nic.mtu === undefined ? "" : ` mtu ${nic.mtu}`}`
    ])
  }
  for (const share of config.filesystems) {
    rows.push([
      "share",
      `${share.source} -> /mnt/${share.tag} (${share.driver}, ${share.readonly ? "ro" : "rw"})`
    ])
  }
  if (plan.installIso !== undefined) rows.push(["installer", plan.installIso])
  return renderBlock(`vm ${config.name}`, rows)
}

/**
 * How to reach the guest, and the ports to publish. The password the user set is never shown;
 * the built-in default is, with a warning, since it is public anyway.
 */
export const accessBlock = (config: VmConfig, inContainer: boolean): string => {
  const rows: Array<readonly [string, string]> = []
  const publish: Array<string> = []
  const nat = config.network.nics.some((nic) => nic.mode === "nat")
  const user = config.cloudInit.user
  if (nat) {
    const login = config.cloudInit.enabled
      ? `ssh -p ${config.network.sshPort} ${user}@localhost`
      : `port ${config.network.sshPort} -> guest 22`
    rows.push(["SSH", login])
    publish.push(`-p ${config.network.sshPort}:${config.network.sshPort}`)
  }
  if (config.cloudInit.enabled) {
    rows.push([
      "login",
      config.cloudInit.passwordIsDefault
        ? `${user} / ${defaultGuestPassword} (the insecure default: set GUEST_PASSWORD)`
        : `${user} with the password from GUEST_PASSWORD`
    ])
  }
  rows.push(["guest-exec", `${inContainer ? "docker exec <container> " : ""}guest-exec "uname -a"`])
  if (nat && config.network.portForwards.length > 0) {
    rows.push([
      "ports",
      config.network.portForwards.map((f) => `${f.host}->${f.guest}/${f.protocol}`).join(", ")
    ])
    for (const forward of config.network.portForwards) {
      publish.push(`-p ${forward.host}:${forward.host}${forward.protocol === "udp" ? "/udp" : ""}`)
    }
  }
  if (config.graphics.mode === "novnc") {
    rows.push([
      "console",
      `https://localhost:${config.graphics.novncPort}/vnc.html?autoconnect=1&resize=scale`
    ])
    publish.push(`-p ${config.graphics.novncPort}:${config.graphics.novncPort}`)
  } else if (config.graphics.mode === "vnc") {
    rows.push(["VNC", `localhost:${config.graphics.vncPort}`])
    publish.push(`-p ${config.graphics.vncPort}:${config.graphics.vncPort}`)
  }
  if (config.redfish.enabled) {
    rows.push(["Redfish", `https://localhost:${config.redfish.port}/redfish/v1/`])
    publish.push(`-p ${config.redfish.port}:${config.redfish.port}`)
  }
  if (inContainer && publish.length > 0) rows.push(["publish", publish.join(" ")])
  return renderBlock("access", rows)
}
