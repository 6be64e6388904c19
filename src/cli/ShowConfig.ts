import { formatByteSize } from "../domain/ByteSize.ts"
import type { VmConfig } from "../domain/Config.ts"
import { makeLayout } from "../domain/Layout.ts"

/** Shown instead of a secret; the JSON form keeps the key so scripts see it is set. */
export const masked = "********"

/**
 * Converts the resolved configuration to plain data with stable keys, for `--show-config
 * --json` and, rendered as YAML, for `--show-config`. Secrets are masked, and sizes are in MiB
 * or qemu-img notation.
 */
export const configView = (config: VmConfig) => {
  const layout = makeLayout(config.data.root, config.name)
  return {
    name: config.name,
    distro: {
      key: config.distro.key,
      name: config.distro.name,
      url: config.distro.url,
      checksum:
        config.distro.checksum?._tag === "Digest"
          ? config.distro.checksum.algorithm
          : config.distro.checksum?._tag === "SumsFile"
            ? config.distro.checksum.url
            : null
    },
    arch: config.arch,
    memory_mib: config.memoryMiB,
    cpus: config.cpus,
    storage: {
      disk_size: formatByteSize(config.storage.diskSize),
      disk_type: config.storage.bus,
      disk_io: config.storage.io,
      disk_cache: config.storage.cache,
      io_thread: config.storage.ioThread,
      allocate: config.storage.preallocate,
      extra_disks: config.storage.extraDisks.map((disk) => ({
        index: disk.index,
        size: formatByteSize(disk.size)
      })),
      devices: config.storage.blockDevices.map((device) => ({
        index: device.index,
        path: device.path
      }))
    },
    boot: {
      from: bootFromView(config),
      mode: config.boot.mode,
      machine: config.boot.machine,
      tpm: config.boot.tpm,
      order: config.boot.order,
      blank_disk: config.boot.blankDisk,
      force_iso: config.boot.forceIso
    },
    cloud_init: {
      enabled: config.cloudInit.enabled,
      user: config.cloudInit.user,
      password: config.cloudInit.passwordIsDefault ? "password (the insecure default)" : masked,
      ssh_pubkey: config.cloudInit.sshPublicKey === undefined ? null : "set",
      user_data: config.cloudInit.userDataPath ?? null
    },
    network: {
      ssh_port: config.network.sshPort,
      port_forwards: config.network.portForwards.map((f) => `${f.host}:${f.guest}/${f.protocol}`),
      ipxe: config.network.ipxe.enabled ? (config.network.ipxe.romPath ?? null) : false,
      nics: config.network.nics.map((nic) => ({
        index: nic.index,
        mode: nic.mode,
        ...(nic.bridge === undefined ? {} : { bridge: nic.bridge }),
        ...(nic.directDevice === undefined ? {} : { direct_dev: nic.directDevice }),
        mac: nic.mac,
        model: nic.model,
        mtu: nic.mtu ?? null,
        boot: nic.boot
      }))
    },
    filesystems: config.filesystems.map((share) => ({
      index: share.index,
      source: share.source,
      tag: share.tag,
      mount: `/mnt/${share.tag}`,
      driver: share.driver,
      accessmode: share.accessMode,
      readonly: share.readonly
    })),
    graphics: {
      mode: config.graphics.mode,
      vnc_port: config.graphics.vncPort,
      novnc_port: config.graphics.novncPort,
      keymap: config.graphics.keymap ?? null,
      vnc_password: config.graphics.vncPassword === undefined ? null : masked
    },
    redfish: {
      enabled: config.redfish.enabled,
      port: config.redfish.port,
      username: config.redfish.username,
      password: config.redfish.passwordIsDefault
        ? "unset (required with REDFISH_ENABLE=1)"
        : masked,
      system_id: config.redfish.systemId
    },
    devices: {
      cpu_model: config.devices.cpuModel,
      hyperv: config.devices.hyperv,
      gpu: config.devices.gpu,
      usb: config.devices.usb,
      balloon: config.devices.balloon,
      rng: config.devices.rng,
      extra_args: config.devices.extraArgs
    },
    runtime: {
      persist: config.runtime.persist,
      data_dir: config.data.root,
      vm_dir: layout.vmDir,
      no_console: config.runtime.noConsole,
      require_kvm: config.runtime.requireKvm,
      libvirt_uri: config.runtime.libvirtUri,
      download_retries: config.runtime.downloadRetries,
      shutdown_timeout: config.runtime.shutdownTimeout,
      log_verbose: config.runtime.logVerbose
    }
  }
}

const bootFromView = (config: VmConfig): string => {
  const from = config.boot.from
  switch (from._tag) {
    case "Catalogue":
      return `catalogue image of ${config.distro.key}`
    case "Blank":
      return "blank"
    case "Url":
      return `${from.url} (${from.hint})`
    case "Path":
      return `${from.path} (${from.hint})`
  }
}

export const renderConfig = (config: VmConfig, json: boolean): string =>
  json
    ? `${JSON.stringify(configView(config), null, 2)}\n`
    : `${Bun.YAML.stringify(configView(config), null, 2).trimEnd()}\n`
