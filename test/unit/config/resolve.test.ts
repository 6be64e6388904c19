import { describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Result } from "effect"
import type { EnvMap } from "../../../src/config/Env.ts"
import { knownVariables } from "../../../src/config/KnownVariables.ts"
import type { Resolved } from "../../../src/config/Resolve.ts"
import { liveHostFacts, makeHostFacts } from "../../../src/host/HostFacts.ts"
import { type FakeHostOptions, fakeSystemFiles } from "./fakeHost.ts"
import { problemsCases } from "./problemCases.ts"
import { matchProblems, problemsOf, resolve, resolveValid } from "./resolveHelpers.ts"

const GiB = 1024 ** 3
const MiB = 1024 ** 2
const sshKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk2bWVudGlvbmVkCg me@laptop"
const userData = "#cloud-config\npackages: [htop]\n"

interface ValueCase {
  readonly name: string
  readonly env: EnvMap
  readonly host?: Partial<FakeHostOptions>
  readonly pick: (resolved: Resolved) => unknown
  readonly expected: unknown
}

const config = (pick: (config: Resolved["config"]) => unknown) => (resolved: Resolved) =>
  pick(resolved.config)

const booleanSpellings: ReadonlyArray<readonly [string, boolean]> = [
  ["1", true],
  ["true", true],
  ["TRUE", true],
  ["  Yes ", true],
  ["on", true],
  ["On", true],
  ["0", false],
  ["false", false],
  ["False", false],
  [" NO", false],
  ["off ", false],
  ["OFF", false]
]

const valueCases: ReadonlyArray<ValueCase> = [
  // Distribution and compute
  { name: "DISTRO default", env: {}, pick: config((c) => c.distro.key), expected: "ubuntu-2404" },
  {
    name: "DISTRO key",
    env: { DISTRO: "debian-12" },
    pick: config((c) => c.distro.key),
    expected: "debian-12"
  },
  {
    name: "DISTRO in upper case",
    env: { DISTRO: " Debian-12 " },
    pick: config((c) => c.distro.key),
    expected: "debian-12"
  },
  { name: "MEMORY default", env: {}, pick: config((c) => c.memoryMiB), expected: 4096 },
  {
    name: "MEMORY in MiB with spaces",
    env: { MEMORY: " 2048 " },
    pick: config((c) => c.memoryMiB),
    expected: 2048
  },
  {
    name: "MEMORY with a unit",
    env: { MEMORY: "8G" },
    pick: config((c) => c.memoryMiB),
    expected: 8192
  },
  {
    name: "MEMORY max keeps 512 MiB back",
    env: { MEMORY: "max" },
    host: { availableMemoryMiB: 3000 },
    pick: config((c) => c.memoryMiB),
    expected: 2488
  },
  {
    name: "MEMORY half of a container limit",
    env: { MEMORY: "HALF" },
    host: { availableMemoryMiB: 3001 },
    pick: config((c) => c.memoryMiB),
    expected: 1500
  },
  { name: "CPUS default", env: {}, pick: config((c) => c.cpus), expected: 2 },
  { name: "CPUS number", env: { CPUS: "4" }, pick: config((c) => c.cpus), expected: 4 },
  {
    name: "CPUS max of a cpuset",
    env: { CPUS: "max" },
    host: { usableCpus: 3 },
    pick: config((c) => c.cpus),
    expected: 3
  },
  {
    name: "CPUS half rounds down",
    env: { CPUS: "half" },
    host: { usableCpus: 3 },
    pick: config((c) => c.cpus),
    expected: 1
  },
  {
    name: "CPUS half of one CPU",
    env: { CPUS: "half" },
    host: { usableCpus: 1 },
    pick: config((c) => c.cpus),
    expected: 1
  },

  // Sizes
  {
    name: "DISK_SIZE default",
    env: {},
    pick: config((c) => c.storage.diskSize),
    expected: 20 * GiB
  },
  {
    name: "DISK_SIZE 20G",
    env: { DISK_SIZE: "20G" },
    pick: config((c) => c.storage.diskSize),
    expected: 20 * GiB
  },
  {
    name: "DISK_SIZE 20GiB",
    env: { DISK_SIZE: "20GiB" },
    pick: config((c) => c.storage.diskSize),
    expected: 20 * GiB
  },
  {
    name: "DISK_SIZE 20GB is binary",
    env: { DISK_SIZE: "20GB" },
    pick: config((c) => c.storage.diskSize),
    expected: 20 * GiB
  },
  {
    name: "DISK_SIZE 512M",
    env: { DISK_SIZE: "512M" },
    pick: config((c) => c.storage.diskSize),
    expected: 512 * MiB
  },
  {
    name: "DISK_SIZE 1T",
    env: { DISK_SIZE: "1T" },
    pick: config((c) => c.storage.diskSize),
    expected: 1024 * GiB
  },
  {
    name: "DISK_SIZE plain bytes",
    env: { DISK_SIZE: "10737418240" },
    pick: config((c) => c.storage.diskSize),
    expected: 10 * GiB
  },
  {
    name: "DISK_SIZE with spaces",
    env: { DISK_SIZE: " 30g " },
    pick: config((c) => c.storage.diskSize),
    expected: 30 * GiB
  },
  {
    name: "DISK_SIZE max measures the VM filesystem",
    env: { DISK_SIZE: "max" },
    host: { freeBytes: { "/": 500 * GiB, "/var/lib/vm-runner": 100 * GiB } },
    pick: config((c) => c.storage.diskSize),
    expected: 90 * GiB
  },
  {
    name: "DISK_SIZE half on a /data volume",
    env: { DISK_SIZE: "half" },
    host: { mountPoints: ["/data"], freeBytes: { "/": 500 * GiB, "/data": 41 * GiB } },
    pick: config((c) => c.storage.diskSize),
    expected: 20 * GiB
  },
  {
    name: "DISK_SIZE max on DATA_DIR",
    env: { DISK_SIZE: "max", DATA_DIR: "/srv/vms" },
    host: { freeBytes: { "/": 500 * GiB, "/srv": 10 * GiB } },
    pick: config((c) => c.storage.diskSize),
    expected: 9 * GiB
  },
  {
    name: "DISK2_SIZE to DISK6_SIZE",
    env: {
      DISK2_SIZE: "50G",
      DISK3_SIZE: "1T",
      DISK4_SIZE: "512M",
      DISK5_SIZE: "1073741824",
      DISK6_SIZE: "2GiB"
    },
    pick: config((c) => c.storage.extraDisks),
    expected: [
      { index: 2, size: 50 * GiB },
      { index: 3, size: 1024 * GiB },
      { index: 4, size: 512 * MiB },
      { index: 5, size: GiB },
      { index: 6, size: 2 * GiB }
    ]
  },
  {
    name: "DISK3_SIZE without DISK2_SIZE keeps its number",
    env: { DISK3_SIZE: "5G" },
    pick: config((c) => c.storage.extraDisks),
    expected: [{ index: 3, size: 5 * GiB }]
  },
  {
    name: "DEVICE to DEVICE6",
    env: {
      DEVICE: "/dev/sdb",
      DEVICE2: "/dev/sdc",
      DEVICE3: "/dev/sdd",
      DEVICE4: "/dev/sde",
      DEVICE5: "/dev/sdf",
      DEVICE6: "/dev/nvme1n1"
    },
    host: {
      pathKinds: {
        "/dev/sdb": "block",
        "/dev/sdc": "block",
        "/dev/sdd": "block",
        "/dev/sde": "block",
        "/dev/sdf": "block",
        "/dev/nvme1n1": "block"
      }
    },
    pick: config((c) => c.storage.blockDevices.map((device) => `${device.index}=${device.path}`)),
    expected: [
      "1=/dev/sdb",
      "2=/dev/sdc",
      "3=/dev/sdd",
      "4=/dev/sde",
      "5=/dev/sdf",
      "6=/dev/nvme1n1"
    ]
  },

  // Storage options
  {
    name: "DISK_TYPE scsi",
    env: { DISK_TYPE: "SCSI" },
    pick: config((c) => c.storage.bus),
    expected: "scsi"
  },
  {
    name: "DISK_TYPE ide on MACHINE pc",
    env: { DISK_TYPE: "ide", MACHINE: "pc" },
    pick: config((c) => [c.storage.bus, c.boot.machine]),
    expected: ["ide", "pc"]
  },
  {
    name: "ALLOCATE",
    env: { ALLOCATE: "1" },
    pick: config((c) => c.storage.preallocate),
    expected: true
  },
  {
    name: "DISK_IO io_uring",
    env: { DISK_IO: "io_uring" },
    pick: config((c) => c.storage.io),
    expected: "io_uring"
  },
  {
    name: "DISK_CACHE writeback moves the default io to threads",
    env: { DISK_CACHE: "writeback" },
    pick: config((c) => [c.storage.cache, c.storage.io]),
    expected: ["writeback", "threads"]
  },
  {
    name: "DISK_CACHE directsync keeps native io",
    env: { DISK_CACHE: "directsync", DISK_IO: "native" },
    pick: config((c) => [c.storage.cache, c.storage.io]),
    expected: ["directsync", "native"]
  },
  {
    name: "IO_THREAD off",
    env: { IO_THREAD: "0" },
    pick: config((c) => c.storage.ioThread),
    expected: false
  },

  // Boot source
  {
    name: "BOOT_FROM blank",
    env: { BOOT_FROM: "Blank" },
    pick: config((c) => [c.boot.from._tag, c.boot.blankDisk, c.name]),
    expected: ["Blank", true, "custom-vm"]
  },
  {
    name: "BOOT_FROM ISO URL",
    env: { BOOT_FROM: "https://example.com/images/install.iso?token=1" },
    pick: config((c) => ({
      from: c.boot.from,
      order: c.boot.order,
      cloudInit: c.cloudInit.enabled,
      blankDisk: c.boot.blankDisk,
      name: c.name
    })),
    expected: {
      from: {
        _tag: "Url",
        url: "https://example.com/images/install.iso?token=1",
        hint: "iso"
      },
      order: ["cdrom", "hd"],
      cloudInit: false,
      blankDisk: true,
      name: "custom-vm"
    }
  },
  {
    name: "BOOT_FROM disk image path",
    env: { BOOT_FROM: "/images/appliance.qcow2" },
    host: { files: { "/images/appliance.qcow2": "" } },
    pick: config((c) => [c.boot.from, c.boot.order, c.cloudInit.enabled, c.boot.blankDisk]),
    expected: [{ _tag: "Path", path: "/images/appliance.qcow2", hint: "disk" }, ["hd"], true, false]
  },
  {
    name: "BOOT_FROM relative path",
    env: { BOOT_FROM: "images/installer.iso" },
    host: { files: { [join(process.cwd(), "images/installer.iso")]: "" } },
    pick: config((c) => c.boot.from),
    expected: { _tag: "Path", path: join(process.cwd(), "images/installer.iso"), hint: "iso" }
  },
  {
    name: "BOOT_FROM archive URL",
    env: { BOOT_FROM: "http://mirror.example/disk.tar.xz" },
    pick: config((c) => c.boot.from),
    expected: { _tag: "Url", url: "http://mirror.example/disk.tar.xz", hint: "archive" }
  },
  {
    name: "BLANK_DISK",
    env: { BLANK_DISK: "yes" },
    pick: config((c) => c.boot.blankDisk),
    expected: true
  },
  {
    name: "BLANK_DISK 0 overrides the ISO default",
    env: { BOOT_FROM: "https://example.com/install.iso", BLANK_DISK: "0" },
    pick: config((c) => c.boot.blankDisk),
    expected: false
  },
  {
    name: "BOOT_ORDER list",
    env: { BOOT_ORDER: " CDROM , hd,network" },
    pick: config((c) => c.boot.order),
    expected: ["cdrom", "hd", "network"]
  },
  {
    name: "CLOUD_INIT off",
    env: { CLOUD_INIT: "false" },
    pick: config((c) => c.cloudInit.enabled),
    expected: false
  },
  {
    name: "CLOUD_INIT on for an ISO",
    env: { BOOT_FROM: "https://example.com/install.iso", CLOUD_INIT: "1" },
    pick: config((c) => c.cloudInit.enabled),
    expected: true
  },
  {
    name: "CLOUD_INIT_USER_DATA",
    env: { CLOUD_INIT_USER_DATA: "/config/user-data.yaml" },
    host: { files: { "/config/user-data.yaml": userData } },
    pick: config((c) => c.cloudInit.userDataPath),
    expected: "/config/user-data.yaml"
  },
  {
    name: "CLOUD_INIT_USER_DATA shell script",
    env: { CLOUD_INIT_USER_DATA: "/config/setup.sh" },
    host: { files: { "/config/setup.sh": "\n#!/bin/sh\necho hi\n" } },
    pick: config((c) => c.cloudInit.userDataPath),
    expected: "/config/setup.sh"
  },

  // Architecture
  {
    name: "ARCH follows the distribution",
    env: { DISTRO: "ubuntu-2404-arm64" },
    pick: config((c) => [c.arch, c.boot.machine]),
    expected: ["aarch64", "virt"]
  },
  {
    name: "ARCH alias arm64",
    env: { DISTRO: "debian-12-arm64", ARCH: "arm64" },
    pick: config((c) => c.arch),
    expected: "aarch64"
  },
  {
    name: "ARCH alias amd64",
    env: { ARCH: "AMD64" },
    pick: config((c) => c.arch),
    expected: "x86_64"
  },
  {
    name: "ARCH empty counts as unset",
    env: { DISTRO: "ubuntu-2404-arm64", ARCH: "" },
    pick: config((c) => c.arch),
    expected: "aarch64"
  },
  {
    name: "ARCH blank counts as unset",
    env: { DISTRO: "fedora-41-arm64", ARCH: "  " },
    pick: config((c) => c.arch),
    expected: "aarch64"
  },
  {
    name: "ARCH decides for BOOT_FROM",
    env: { BOOT_FROM: "https://example.com/arm.iso", ARCH: "aarch64" },
    pick: config((c) => [c.arch, c.boot.machine]),
    expected: ["aarch64", "virt"]
  },
  {
    name: "ARCH for BOOT_FROM defaults to the distribution",
    env: { BOOT_FROM: "blank", DISTRO: "debian-12-arm64" },
    pick: config((c) => c.arch),
    expected: "aarch64"
  },
  {
    name: "CPU_MODEL",
    env: { CPU_MODEL: "host-passthrough" },
    pick: config((c) => c.devices.cpuModel),
    expected: "host-passthrough"
  },
  {
    name: "CPU_MODEL named model with flags",
    env: { CPU_MODEL: "EPYC-Rome,+ssse3" },
    pick: config((c) => c.devices.cpuModel),
    expected: "EPYC-Rome,+ssse3"
  },
  {
    name: "EXTRA_ARGS quoting",
    env: { EXTRA_ARGS: ` -device virtio-keyboard-pci -name "my vm" 'a\\b' ` },
    pick: config((c) => c.devices.extraArgs),
    expected: ["-device", "virtio-keyboard-pci", "-name", "my vm", "a\\b"]
  },
  {
    name: "DOWNLOAD_RETRIES",
    env: { DOWNLOAD_RETRIES: "5" },
    pick: config((c) => c.runtime.downloadRetries),
    expected: 5
  },

  // Firmware and devices
  {
    name: "BOOT_MODE default",
    env: {},
    pick: config((c) => [c.boot.mode, c.boot.tpm, c.boot.machine]),
    expected: ["uefi", false, "q35"]
  },
  {
    name: "BOOT_MODE legacy",
    env: { BOOT_MODE: "Legacy" },
    pick: config((c) => c.boot.mode),
    expected: "legacy"
  },
  {
    name: "BOOT_MODE secure turns TPM on",
    env: { BOOT_MODE: "secure" },
    pick: config((c) => [c.boot.mode, c.boot.tpm]),
    expected: ["secure", true]
  },
  {
    name: "TPM on with uefi",
    env: { TPM: "on" },
    pick: config((c) => c.boot.tpm),
    expected: true
  },
  {
    name: "MACHINE pc",
    env: { MACHINE: "pc" },
    pick: config((c) => c.boot.machine),
    expected: "pc"
  },
  {
    name: "BALLOON, RNG and USB off",
    env: { BALLOON: "off", RNG: "no", USB: "FALSE" },
    pick: config((c) => [c.devices.balloon, c.devices.rng, c.devices.usb]),
    expected: [false, false, false]
  },
  {
    name: "HYPERV and GPU",
    env: { HYPERV: "1", GPU: "intel" },
    pick: config((c) => [c.devices.hyperv, c.devices.gpu]),
    expected: [true, "intel"]
  },

  // Names and access
  {
    name: "GUEST_NAME",
    env: { GUEST_NAME: " devbox ", HOSTNAME: "other" },
    pick: config((c) => c.name),
    expected: "devbox"
  },
  {
    name: "GUEST_NAME of 63 characters",
    env: { GUEST_NAME: "a".repeat(63) },
    pick: config((c) => c.name),
    expected: "a".repeat(63)
  },
  {
    name: "GUEST_NAME blank falls back",
    env: { GUEST_NAME: "   ", DISTRO: "debian-12" },
    pick: config((c) => c.name),
    expected: "debian-12"
  },
  {
    name: "HOSTNAME set by the user",
    env: { HOSTNAME: "build-runner.lab", DISTRO: "debian-12" },
    pick: config((c) => c.name),
    expected: "build-runner.lab"
  },
  {
    name: "HOSTNAME as a short container id",
    env: { HOSTNAME: "3f4e5a6b7c8d", DISTRO: "debian-12" },
    pick: config((c) => c.name),
    expected: "debian-12"
  },
  {
    name: "HOSTNAME as a full container id",
    env: { HOSTNAME: "ab".repeat(32), DISTRO: "alpine-3" },
    pick: config((c) => c.name),
    expected: "alpine-3"
  },
  {
    name: "HOSTNAME not usable as a name",
    env: { HOSTNAME: "my host" },
    pick: (resolved) => [
      resolved.config.name,
      resolved.notes.some((note) => note.includes("HOSTNAME"))
    ],
    expected: ["ubuntu-2404", true]
  },
  {
    name: "VM name for an ISO",
    env: { BOOT_FROM: "/isos/installer.ISO" },
    host: { files: { "/isos/installer.ISO": "" } },
    pick: config((c) => [c.name, c.boot.isoDefaults]),
    expected: ["custom-vm", true]
  },
  {
    name: "GUEST_PASSWORD",
    env: { GUEST_PASSWORD: " s3cret " },
    pick: config((c) => [c.cloudInit.password, c.cloudInit.passwordIsDefault]),
    expected: [" s3cret ", false]
  },
  {
    name: "GUEST_PASSWORD default",
    env: {},
    pick: config((c) => [c.cloudInit.password, c.cloudInit.passwordIsDefault]),
    expected: ["password", true]
  },
  {
    name: "SSH_PORT",
    env: { SSH_PORT: "2200" },
    pick: config((c) => c.network.sshPort),
    expected: 2200
  },
  {
    name: "SSH_PUBKEY",
    env: { SSH_PUBKEY: `${sshKey}\n` },
    pick: config((c) => c.cloudInit.sshPublicKey),
    expected: sshKey
  },
  {
    name: "SSH_PUBKEY with two keys",
    env: { SSH_PUBKEY: `${sshKey}\necdsa-sha2-nistp256 AAAAE2VjZHNh other@host` },
    pick: config((c) => c.cloudInit.sshPublicKey?.split("\n").length),
    expected: 2
  },
  {
    name: "FORCE_ISO",
    env: { FORCE_ISO: "1" },
    pick: config((c) => c.boot.forceIso),
    expected: true
  },
  {
    name: "NO_CONSOLE",
    env: { NO_CONSOLE: "true" },
    pick: config((c) => c.runtime.noConsole),
    expected: true
  },
  {
    name: "NO_CONSOLE defaults on with noVNC",
    env: { GRAPHICS: "novnc" },
    pick: config((c) => c.runtime.noConsole),
    expected: true
  },

  // Data directory and persistence
  {
    name: "DATA_DIR default",
    env: {},
    pick: config((c) => [c.data, c.runtime.persist]),
    expected: [{ volume: undefined, root: "/var/lib/vm-runner" }, false]
  },
  {
    name: "/data mount turns PERSIST on",
    env: {},
    host: { mountPoints: ["/data"] },
    pick: (resolved) => [
      resolved.config.data,
      resolved.config.runtime.persist,
      resolved.notes.some((note) => note.startsWith("PERSIST is on"))
    ],
    expected: [{ volume: "/data", root: "/data" }, true, true]
  },
  {
    name: "/data directory that is not a mount",
    env: {},
    host: { pathKinds: { "/data": "directory" } },
    pick: config((c) => [c.data.root, c.runtime.persist]),
    expected: ["/var/lib/vm-runner", false]
  },
  {
    name: "PERSIST 0 on a /data mount",
    env: { PERSIST: "0" },
    host: { mountPoints: ["/data"] },
    pick: config((c) => c.runtime.persist),
    expected: false
  },
  {
    name: "PERSIST 1 without a volume",
    env: { PERSIST: "1" },
    pick: config((c) => c.runtime.persist),
    expected: true
  },
  {
    name: "DATA_DIR explicit",
    env: { DATA_DIR: "/srv/vms" },
    host: { mountPoints: ["/data"] },
    pick: config((c) => [c.data, c.runtime.persist]),
    expected: [{ volume: "/srv/vms", root: "/srv/vms" }, true]
  },
  {
    name: "REQUIRE_KVM",
    env: { REQUIRE_KVM: "1" },
    pick: config((c) => c.runtime.requireKvm),
    expected: true
  },
  {
    name: "LIBVIRT_URI",
    env: { LIBVIRT_URI: "qemu+ssh://root@host/system" },
    pick: config((c) => c.runtime.libvirtUri),
    expected: "qemu+ssh://root@host/system"
  },
  {
    name: "LOG_VERBOSE",
    env: { LOG_VERBOSE: "yes" },
    pick: config((c) => c.runtime.logVerbose),
    expected: true
  },
  {
    name: "SHUTDOWN_TIMEOUT",
    env: { SHUTDOWN_TIMEOUT: "120" },
    pick: config((c) => c.runtime.shutdownTimeout),
    expected: 120
  },

  // Filesystem shares
  {
    name: "FILESYSTEM_SOURCE derives the tag",
    env: { FILESYSTEM_SOURCE: "/share/" },
    host: { pathKinds: { "/share": "directory", "/share/": "directory" } },
    pick: config((c) => c.filesystems),
    expected: [
      {
        index: 1,
        source: "/share/",
        tag: "share",
        driver: "virtiofs",
        accessMode: "passthrough",
        readonly: false
      }
    ]
  },
  {
    name: "FILESYSTEM tag from an unusual name",
    env: { FILESYSTEM_SOURCE: "/mnt/_My Docs (2)" },
    host: { pathKinds: { "/mnt/_My Docs (2)": "directory" } },
    pick: config((c) => c.filesystems[0]?.tag),
    expected: "My-Docs--2"
  },
  {
    name: "FILESYSTEM_TARGET, DRIVER, ACCESSMODE and READONLY",
    env: {
      FILESYSTEM_SOURCE: "/share",
      FILESYSTEM_TARGET: "data",
      FILESYSTEM_DRIVER: "9P",
      FILESYSTEM_ACCESSMODE: "mapped",
      FILESYSTEM_READONLY: "1"
    },
    host: { pathKinds: { "/share": "directory" } },
    pick: config((c) => c.filesystems[0]),
    expected: {
      index: 1,
      source: "/share",
      tag: "data",
      driver: "9p",
      accessMode: "mapped",
      readonly: true
    }
  },
  {
    name: "FILESYSTEM2 inherits DRIVER, ACCESSMODE and READONLY",
    env: {
      FILESYSTEM_SOURCE: "/share",
      FILESYSTEM_DRIVER: "9p",
      FILESYSTEM_ACCESSMODE: "squash",
      FILESYSTEM_READONLY: "1",
      FILESYSTEM2_SOURCE: "/srv/logs"
    },
    host: { pathKinds: { "/share": "directory", "/srv/logs": "directory" } },
    pick: config((c) => c.filesystems[1]),
    expected: {
      index: 2,
      source: "/srv/logs",
      tag: "logs",
      driver: "9p",
      accessMode: "squash",
      readonly: true
    }
  },
  {
    name: "FILESYSTEM2 overrides every field",
    env: {
      FILESYSTEM_SOURCE: "/share",
      FILESYSTEM_DRIVER: "9p",
      FILESYSTEM_READONLY: "1",
      FILESYSTEM2_SOURCE: "/srv/logs",
      FILESYSTEM2_TARGET: "journal",
      FILESYSTEM2_DRIVER: "9p",
      FILESYSTEM2_ACCESSMODE: "mapped",
      FILESYSTEM2_READONLY: "0"
    },
    host: { pathKinds: { "/share": "directory", "/srv/logs": "directory" } },
    pick: config((c) => c.filesystems[1]),
    expected: {
      index: 2,
      source: "/srv/logs",
      tag: "journal",
      driver: "9p",
      accessMode: "mapped",
      readonly: false
    }
  },
  {
    name: "FILESYSTEM2 virtiofs does not inherit mapped",
    env: {
      FILESYSTEM_SOURCE: "/share",
      FILESYSTEM_DRIVER: "9p",
      FILESYSTEM_ACCESSMODE: "mapped",
      FILESYSTEM2_SOURCE: "/srv/logs",
      FILESYSTEM2_DRIVER: "virtiofs"
    },
    host: { pathKinds: { "/share": "directory", "/srv/logs": "directory" } },
    pick: config((c) => [c.filesystems[1]?.driver, c.filesystems[1]?.accessMode]),
    expected: ["virtiofs", "passthrough"]
  },
  {
    name: "FILESYSTEM_SOURCE that does not exist yet",
    env: { FILESYSTEM_SOURCE: "/share" },
    pick: config((c) => c.filesystems.length),
    expected: 1
  },

  // Networking
  {
    name: "MAC of ubuntu-2404 NIC 1",
    env: {},
    pick: config((c) => c.network.nics.map((nic) => nic.mac)),
    expected: ["52:54:00:b2:25:3c"]
  },
  {
    name: "MACs of demo NICs 1 to 3",
    env: { GUEST_NAME: "demo", NETWORK2_MODE: "nat", NETWORK3_MODE: "nat" },
    pick: config((c) => c.network.nics.map((nic) => nic.mac)),
    expected: ["52:54:00:2a:13:c6", "52:54:00:ae:2e:09", "52:54:00:2e:13:ce"]
  },
  {
    name: "NETWORK_MODE bridge",
    env: { NETWORK_MODE: "bridge", NETWORK_BRIDGE: "br0" },
    host: { netDevices: { br0: "bridge" } },
    pick: config((c) => [c.network.nics[0]?.mode, c.network.nics[0]?.bridge]),
    expected: ["bridge", "br0"]
  },
  {
    name: "NETWORK_MODE direct",
    env: { NETWORK_MODE: "direct", NETWORK_DIRECT_DEV: "eth0", NETWORK_BRIDGE: "br0" },
    pick: config((c) => [c.network.nics[0]?.mode, c.network.nics[0]?.directDevice]),
    expected: ["direct", "eth0"]
  },
  {
    name: "NETWORK_BRIDGE ignored in NAT mode",
    env: { NETWORK_BRIDGE: "br0" },
    pick: config((c) => [c.network.nics[0]?.mode, c.network.nics[0]?.bridge]),
    expected: ["nat", undefined]
  },
  {
    name: "NETWORK_MAC in upper case",
    env: { NETWORK_MAC: "52:54:00:AB:CD:EF" },
    pick: config((c) => c.network.nics[0]?.mac),
    expected: "52:54:00:ab:cd:ef"
  },
  {
    name: "NETWORK_MODEL",
    env: { NETWORK_MODEL: "e1000e" },
    pick: config((c) => c.network.nics[0]?.model),
    expected: "e1000e"
  },
  {
    name: "NETWORK_MTU",
    env: { NETWORK_MTU: "9000" },
    host: { defaultRouteMtu: 1450 },
    pick: config((c) => c.network.nics[0]?.mtu),
    expected: 9000
  },
  {
    name: "NETWORK_MTU from the host route",
    env: {},
    host: { defaultRouteMtu: 1450 },
    pick: config((c) => c.network.nics[0]?.mtu),
    expected: 1450
  },
  {
    name: "NETWORK_MTU left out at 1500",
    env: {},
    host: { defaultRouteMtu: 1500 },
    pick: config((c) => c.network.nics[0]?.mtu),
    expected: undefined
  },
  {
    name: "NETWORK_BOOT adds network to the boot order",
    env: { NETWORK_BOOT: "1" },
    pick: config((c) => [c.boot.order, c.network.nics[0]?.boot]),
    expected: [["hd", "network"], true]
  },
  {
    name: "NETWORK2 fields",
    env: {
      NETWORK2_MODE: "bridge",
      NETWORK2_BRIDGE: "br1",
      NETWORK2_MAC: "02:00:00:00:00:02",
      NETWORK2_MODEL: "rtl8139",
      NETWORK2_MTU: "1400",
      NETWORK2_BOOT: "on",
      NETWORK3_MODE: "direct",
      NETWORK3_DIRECT_DEV: "enp3s0"
    },
    host: { netDevices: { br1: "bridge", enp3s0: "device" } },
    pick: config((c) => c.network.nics.slice(1)),
    expected: [
      {
        index: 2,
        mode: "bridge",
        bridge: "br1",
        directDevice: undefined,
        mac: "02:00:00:00:00:02",
        model: "rtl8139",
        mtu: 1400,
        boot: true
      },
      {
        index: 3,
        mode: "direct",
        bridge: undefined,
        directDevice: "enp3s0",
        mac: "52:54:00:f6:06:68",
        model: "virtio",
        mtu: undefined,
        boot: false
      }
    ]
  },
  {
    name: "NETWORK2_DIRECT_DEV",
    env: { NETWORK2_MODE: "direct", NETWORK2_DIRECT_DEV: "eth0" },
    pick: config((c) => [c.network.nics[1]?.mode, c.network.nics[1]?.directDevice]),
    expected: ["direct", "eth0"]
  },
  {
    name: "PORT_FWD TCP and UDP",
    env: { PORT_FWD: " 8080:80, 5353:53/UDP ,,5901:5901/tcp" },
    pick: config((c) => c.network.portForwards),
    expected: [
      { protocol: "tcp", host: 8080, guest: 80 },
      { protocol: "udp", host: 5353, guest: 53 },
      { protocol: "tcp", host: 5901, guest: 5901 }
    ]
  },
  {
    name: "PORT_FWD UDP may share a TCP port",
    env: { PORT_FWD: "2222:53/udp" },
    pick: config((c) => c.network.portForwards.length),
    expected: 1
  },
  {
    name: "PORT_FWD on a second NIC in NAT mode",
    env: {
      NETWORK_MODE: "bridge",
      NETWORK_BRIDGE: "br0",
      NETWORK2_MODE: "nat",
      PORT_FWD: "8080:80"
    },
    host: { netDevices: { br0: "bridge" } },
    pick: config((c) => c.network.portForwards.length),
    expected: 1
  },
  {
    name: "SSH_PORT unclaimed without a NAT NIC",
    env: {
      NETWORK_MODE: "bridge",
      NETWORK_BRIDGE: "br0",
      GRAPHICS: "vnc",
      VNC_PORT: "2222"
    },
    host: { netDevices: { br0: "bridge" } },
    pick: config((c) => c.graphics.vncPort),
    expected: 2222
  },
  {
    name: "IPXE_ENABLE finds the ROM",
    env: { IPXE_ENABLE: "1" },
    host: { files: { "/usr/share/qemu/efi-virtio.rom": "" } },
    pick: config((c) => [c.network.ipxe, c.boot.order, c.network.nics[0]?.boot]),
    expected: [
      { enabled: true, romPath: "/usr/share/qemu/efi-virtio.rom" },
      ["network", "hd"],
      true
    ]
  },
  {
    name: "IPXE_ROM_PATH",
    env: { IPXE_ENABLE: "1", IPXE_ROM_PATH: "/roms/custom.rom" },
    host: { files: { "/roms/custom.rom": "" } },
    pick: config((c) => c.network.ipxe),
    expected: { enabled: true, romPath: "/roms/custom.rom" }
  },

  // Graphics and Redfish
  {
    name: "GRAPHICS vnc with ports and keymap",
    env: { GRAPHICS: "vnc", VNC_PORT: "5901", NOVNC_PORT: "6081", VNC_KEYMAP: "de-ch" },
    pick: config((c) => [
      c.graphics.mode,
      c.graphics.vncPort,
      c.graphics.novncPort,
      c.graphics.keymap
    ]),
    expected: ["vnc", 5901, 6081, "de-ch"]
  },
  {
    name: "VNC_KEYMAP bepo",
    env: { VNC_KEYMAP: "BEPO" },
    pick: config((c) => c.graphics.keymap),
    expected: "bepo"
  },
  {
    name: "VNC_PASSWORD longer than VNC checks",
    env: { GRAPHICS: "vnc", VNC_PASSWORD: "0123456789" },
    pick: (resolved) => [
      resolved.config.graphics.vncPassword,
      resolved.warnings.some((warning) => warning.startsWith("VNC_PASSWORD is longer"))
    ],
    expected: ["0123456789", true]
  },
  {
    name: "TLS_CERT_FILE and TLS_KEY_FILE",
    env: { TLS_CERT_FILE: "/config/tls.crt", TLS_KEY_FILE: "/config/tls.key" },
    host: { files: { "/config/tls.crt": "", "/config/tls.key": "" } },
    pick: config((c) => [c.graphics.tlsCertPath, c.graphics.tlsKeyPath]),
    expected: ["/config/tls.crt", "/config/tls.key"]
  },
  {
    name: "REDFISH defaults",
    env: { GUEST_NAME: "bmc-test" },
    pick: config((c) => c.redfish),
    expected: {
      enabled: false,
      port: 8443,
      username: "admin",
      password: "password",
      passwordIsDefault: true,
      systemId: "bmc-test",
      storagePool: "default",
      storagePath: "/var/lib/libvirt/images"
    }
  },
  {
    name: "REDFISH variables",
    env: {
      REDFISH_ENABLE: "1",
      REDFISH_PORT: "9443",
      REDFISH_USERNAME: "operator",
      REDFISH_PASSWORD: "hunter2",
      REDFISH_SYSTEM_ID: "system-1",
      REDFISH_STORAGE_POOL: "vms",
      REDFISH_STORAGE_PATH: "/data/pool"
    },
    pick: config((c) => c.redfish),
    expected: {
      enabled: true,
      port: 9443,
      username: "operator",
      password: "hunter2",
      passwordIsDefault: false,
      systemId: "system-1",
      storagePool: "vms",
      storagePath: "/data/pool"
    }
  },

  // Typo hints
  {
    name: "typo hint for MEMROY",
    env: { MEMROY: "8192" },
    pick: (resolved) => resolved.warnings,
    expected: ["MEMROY is not a vm-runner variable; did you mean MEMORY?"]
  },
  {
    name: "hint for the renamed VM_MEMORY",
    env: { VM_MEMORY: "8192" },
    pick: (resolved) => resolved.warnings,
    expected: ["VM_MEMORY is no longer read; use MEMORY"]
  },
  {
    name: "typo hint keeps the NIC number",
    env: { NETWORK2_MODE: "nat", NETWORK2_MODLE: "e1000" },
    pick: (resolved) => resolved.warnings,
    expected: ["NETWORK2_MODLE is not a vm-runner variable; did you mean NETWORK2_MODEL?"]
  },
  {
    name: "hint for a lower-case name",
    env: { memory: "8192" },
    pick: (resolved) => resolved.warnings,
    expected: ["memory is not read; did you mean MEMORY?"]
  },
  {
    name: "no hints for common variables",
    env: {
      PATH: "/usr/bin",
      HOME: "/root",
      TERM: "xterm",
      USER: "root",
      SHELL: "/bin/sh",
      LANG: "C.UTF-8",
      PWD: "/",
      SHLVL: "1",
      HOSTNAME: "3f4e5a6b7c8d",
      TZ: "UTC",
      container: "podman"
    },
    pick: (resolved) => resolved.warnings,
    expected: []
  }
]

const booleanVariables = [
  "ALLOCATE",
  "BLANK_DISK",
  "CLOUD_INIT",
  "TPM",
  "IO_THREAD",
  "BALLOON",
  "RNG",
  "USB",
  "HYPERV",
  "PERSIST",
  "FORCE_ISO",
  "NO_CONSOLE",
  "NETWORK_BOOT",
  "IPXE_ENABLE",
  "REDFISH_ENABLE",
  "REQUIRE_KVM",
  "LOG_VERBOSE"
]

/** Reads the boolean `name` back out of a resolved configuration. */
const booleanValue = (name: string, resolved: Resolved): boolean => {
  const c = resolved.config
  const values: Record<string, boolean | undefined> = {
    ALLOCATE: c.storage.preallocate,
    BLANK_DISK: c.boot.blankDisk,
    CLOUD_INIT: c.cloudInit.enabled,
    TPM: c.boot.tpm,
    IO_THREAD: c.storage.ioThread,
    BALLOON: c.devices.balloon,
    RNG: c.devices.rng,
    USB: c.devices.usb,
    HYPERV: c.devices.hyperv,
    PERSIST: c.runtime.persist,
    FORCE_ISO: c.boot.forceIso,
    NO_CONSOLE: c.runtime.noConsole,
    NETWORK_BOOT: c.network.nics[0]?.boot,
    IPXE_ENABLE: c.network.ipxe.enabled,
    REDFISH_ENABLE: c.redfish.enabled,
    REQUIRE_KVM: c.runtime.requireKvm,
    LOG_VERBOSE: c.runtime.logVerbose
  }
  const value = values[name]
  if (value === undefined) throw new Error(`no boolean ${name} in the configuration`)
  return value
}

/** A host where iPXE finds its ROM, so IPXE_ENABLE=1 resolves. */
const ipxeHost: Partial<FakeHostOptions> = { files: { "/usr/share/qemu/efi-virtio.rom": "" } }

describe("resolveConfig values", () => {
  for (const { name, env, host, pick, expected } of valueCases) {
    test(name, () => {
      expect(pick(resolveValid(env, host))).toEqual(expected)
    })
  }

  for (const variable of booleanVariables) {
    test(`${variable} accepts every spelling`, () => {
      for (const [spelling, expected] of booleanSpellings) {
        // Redfish refuses to start without a password of the user's own.
        const extra = variable === "REDFISH_ENABLE" ? { REDFISH_PASSWORD: "s3cret" } : {}
        const resolved = resolveValid({ [variable]: spelling, ...extra }, ipxeHost)
        expect({ spelling, value: booleanValue(variable, resolved) }).toEqual({
          spelling,
          value: expected
        })
      }
    })
  }

  test("every variable has a value case", () => {
    const numbered = [
      ...[2, 3, 4, 5, 6].flatMap((index) => [`DISK${index}_SIZE`, `DEVICE${index}`]),
      ...["MODE", "BRIDGE", "DIRECT_DEV", "MAC", "MODEL", "MTU", "BOOT"].map(
        (field) => `NETWORK2_${field}`
      ),
      ...["SOURCE", "TARGET", "DRIVER", "ACCESSMODE", "READONLY"].map(
        (field) => `FILESYSTEM2_${field}`
      )
    ]
    const covered = new Set(valueCases.flatMap((entry) => Object.keys(entry.env)))
    for (const variable of booleanVariables) covered.add(variable)
    // DISTROS_FILE is read by loadCatalogue, which its own test covers.
    covered.add("DISTROS_FILE")
    const missing = [...knownVariables, ...numbered].filter((name) => !covered.has(name))
    expect(missing).toEqual([])
  })
})

describe("resolveConfig problems", () => {
  for (const { name, env, host, problems } of problemsCases) {
    test(name, () => {
      const { unexpected, missing } = matchProblems(problemsOf(env, host), problems)
      expect({ unexpected, missing }).toEqual({ unexpected: [], missing: [] })
    })
  }

  test("every problem names value, rule and example", () => {
    const env = { MEMORY: "lots", CPUS: "0", DISK_SIZE: "-1", USB: "random", GRAPHICS: "spice" }
    const result = resolve(env)
    if (Result.isSuccess(result)) throw new Error("expected an invalid configuration")
    const lines = result.failure.message.split("\n")
    expect(lines[0]).toBe("invalid configuration (5 problems):")
    expect(lines).toContain(
      '  USB="random": expected 1, 0, true, false, yes, no, on or off (for example USB=1)'
    )
    expect(lines).toContain(
      '  GRAPHICS="spice": expected one of none, vnc or novnc (for example GRAPHICS=none)'
    )
    for (const problem of result.failure.problems) {
      expect(problem.value).toBe(env[problem.variable as keyof typeof env])
      expect(problem.expected).toStartWith("expected")
      expect(problem.example).toStartWith(`${problem.variable}=`)
    }
  })

  test("error message lists typo hints", () => {
    const result = resolve({ CPUS: "lots", MEMROY: "8192" })
    if (Result.isSuccess(result)) throw new Error("expected an invalid configuration")
    expect(result.failure.message.split("\n")).toEqual([
      "invalid configuration (1 problem):",
      '  CPUS="lots": expected a whole number from 1 to 1024, max or half (for example CPUS=2)',
      "variables that may be misspelt or renamed:",
      "  MEMROY is not a vm-runner variable; did you mean MEMORY?"
    ])
  })

  test("secret values stay out of messages", () => {
    const result = resolve({ GUEST_PASSWORD: "hunter2\nsecond line" })
    if (Result.isSuccess(result)) throw new Error("expected an invalid configuration")
    expect(result.failure.problems[0]?.value).toBeUndefined()
    expect(result.failure.message).not.toContain("hunter2")
    expect(result.failure.message).toContain("GUEST_PASSWORD (value hidden)")
  })
})

describe("resolveConfig on the live host", () => {
  test("reads without writing", () => {
    const parent = mkdtempSync(join(tmpdir(), "vm-runner-config-"))
    const dataDir = join(parent, "data")
    try {
      const env = { DATA_DIR: dataDir, DISK_SIZE: "max", MEMORY: "256", CPUS: "1" }
      const resolved = resolveValid(env, liveHostFacts)
      expect(resolved.config.data.root).toBe(dataDir)
      expect(resolved.config.storage.diskSize).toBeGreaterThan(0)
      expect(liveHostFacts.pathKind(dataDir)).toBe("missing")
    } finally {
      rmSync(parent, { recursive: true, force: true })
    }
  })

  test("MEMORY max under a cgroup v2 limit", () => {
    const host = makeHostFacts(
      fakeSystemFiles({
        files: {
          "/proc/meminfo": "MemTotal: 65536000 kB\nMemAvailable: 60000000 kB\n",
          "/proc/self/cgroup": "0::/\n",
          "/sys/fs/cgroup/cgroup.controllers": "cpu memory\n",
          "/sys/fs/cgroup/memory.max": `${4 * GiB}\n`,
          "/sys/fs/cgroup/memory.current": `${1 * GiB}\n`,
          "/sys/fs/cgroup/memory.stat": `anon 100\ninactive_file ${512 * MiB}\n`,
          "/sys/fs/cgroup/cpu.max": "200000 100000\n"
        },
        onlineCpus: 32
      })
    )
    const resolved = resolveValid({ MEMORY: "max", CPUS: "max" }, host)
    expect(resolved.config.memoryMiB).toBe(4096 - 512 - 512)
    expect(resolved.config.cpus).toBe(2)
  })
})
