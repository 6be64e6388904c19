import type { EnvMap } from "../../../src/config/Env.ts"
import type { FakeHostOptions } from "./fakeHost.ts"
import type { ExpectedProblem } from "./resolveHelpers.ts"

/** An environment and the exact problems it must produce, each as variable and phrase. */
export interface ProblemCase {
  readonly name: string
  readonly env: EnvMap
  readonly host?: Partial<FakeHostOptions>
  readonly problems: ReadonlyArray<ExpectedProblem>
}

const GiB = 1024 ** 3
const boolRule = "expected 1, 0, true, false, yes, no, on or off"
const sizeRule = "expected a whole number above zero with K, M, G or T"
const nameRule = "expected 1 to 63 letters, digits, '.', '_' or '-', starting with a letter"
const tagRule = "letters, digits, '.', '_' and '-'"
const dirs = (...paths: Array<string>): Partial<FakeHostOptions> => ({
  pathKinds: Object.fromEntries(paths.map((path) => [path, "directory" as const]))
})

export const problemsCases: ReadonlyArray<ProblemCase> = [
  // Every problem at once
  {
    name: "five bad variables give five problems",
    env: { MEMORY: "lots", CPUS: "0", DISK_SIZE: "-1", USB: "random", GRAPHICS: "spice" },
    problems: [
      ["MEMORY", 'MEMORY="lots": expected a whole number of MiB of at least 128'],
      ["CPUS", 'CPUS="0": expected a whole number from 1 to 1024, max or half'],
      ["DISK_SIZE", `DISK_SIZE="-1": ${sizeRule}`],
      ["USB", `USB="random": ${boolRule} (for example USB=1)`],
      ["GRAPHICS", "expected one of none, vnc or novnc"]
    ]
  },

  // Booleans
  { name: "boolean random", env: { PERSIST: "random" }, problems: [["PERSIST", boolRule]] },
  { name: "boolean 2", env: { HYPERV: "2" }, problems: [["HYPERV", boolRule]] },
  { name: "boolean y", env: { FORCE_ISO: "y" }, problems: [["FORCE_ISO", boolRule]] },
  {
    name: "boolean in a numbered family",
    env: { NETWORK2_MODE: "nat", NETWORK2_BOOT: "enabled" },
    problems: [["NETWORK2_BOOT", boolRule]]
  },

  // Sizes
  { name: "size 0", env: { DISK_SIZE: "0" }, problems: [["DISK_SIZE", sizeRule]] },
  { name: "size -1", env: { DISK2_SIZE: "-1" }, problems: [["DISK2_SIZE", sizeRule]] },
  {
    name: "size 1.5G suggests 1536M",
    env: { DISK_SIZE: "1.5G" },
    problems: [["DISK_SIZE", "(for example DISK_SIZE=1536M)"]]
  },
  {
    name: "size 1.3G keeps the plain example",
    env: { DISK3_SIZE: "1.3G" },
    problems: [["DISK3_SIZE", "(for example DISK3_SIZE=50G)"]]
  },
  { name: "size garbage", env: { DISK_SIZE: "big" }, problems: [["DISK_SIZE", sizeRule]] },
  { name: "size 20Gi", env: { DISK_SIZE: "20Gi" }, problems: [["DISK_SIZE", sizeRule]] },
  { name: "size 20P", env: { DISK_SIZE: "20P" }, problems: [["DISK_SIZE", sizeRule]] },
  { name: "size 0G", env: { DISK6_SIZE: "0G" }, problems: [["DISK6_SIZE", sizeRule]] },
  {
    name: "DISK_SIZE max without free space",
    env: { DISK_SIZE: "max" },
    host: { freeBytes: { "/": 512 * 1024 ** 2 } },
    problems: [
      [
        "DISK_SIZE",
        "only 512.0 MiB is free on the filesystem of /var/lib/vm-runner/vms/ubuntu-2404, so " +
          "max gives less than 1 GiB"
      ]
    ]
  },
  {
    name: "DISK_SIZE half with unknown free space",
    env: { DISK_SIZE: "half" },
    host: { freeBytes: {} },
    problems: [["DISK_SIZE", "cannot read the free space of the filesystem of"]]
  },
  {
    name: "DISK1_SIZE and DISK7_SIZE",
    env: { DISK1_SIZE: "10G", DISK7_SIZE: "10G", DISK02_SIZE: "10G" },
    problems: [
      ["DISK1_SIZE", "additional disks are DISK2_SIZE to DISK6_SIZE"],
      ["DISK02_SIZE", "additional disks are DISK2_SIZE to DISK6_SIZE"],
      ["DISK7_SIZE", "additional disks are DISK2_SIZE to DISK6_SIZE"]
    ]
  },

  // Memory and CPUs
  {
    name: "MEMORY below the minimum",
    env: { MEMORY: "64" },
    problems: [["MEMORY", "at least 128"]]
  },
  {
    name: "MEMORY with digit separators",
    env: { MEMORY: " 4_096 " },
    problems: [["MEMORY", 'MEMORY=" 4_096 "']]
  },
  { name: "MEMORY fraction", env: { MEMORY: "1.5G" }, problems: [["MEMORY", "at least 128"]] },
  { name: "MEMORY negative", env: { MEMORY: "-1" }, problems: [["MEMORY", "at least 128"]] },
  {
    name: "MEMORY max in a small container",
    env: { MEMORY: "max" },
    host: { availableMemoryMiB: 600 },
    problems: [["MEMORY", "only 600 MiB of memory is available to this container"]]
  },
  {
    name: "MEMORY half in a small container",
    env: { MEMORY: "half" },
    host: { availableMemoryMiB: 200 },
    problems: [["MEMORY", "so half would give the guest less than the minimum of 128 MiB"]]
  },
  { name: "CPUS fraction", env: { CPUS: "1.5" }, problems: [["CPUS", "whole number"]] },
  { name: "CPUS too many", env: { CPUS: "4096" }, problems: [["CPUS", "from 1 to 1024"]] },
  { name: "CPUS empty is default", env: { CPUS: "", MEMORY: " ", DISK_SIZE: "" }, problems: [] },

  // Distribution and architecture
  {
    name: "DISTRO unknown suggests the nearest key",
    env: { DISTRO: "ubuntu-24.04" },
    problems: [["DISTRO", "unknown distribution in the built-in catalogue; run --list-distros"]]
  },
  {
    name: "DISTRO suggestion",
    env: { DISTRO: "ubuntu-24.04" },
    problems: [["DISTRO", "(for example DISTRO=ubuntu-2404)"]]
  },
  { name: "ARCH unknown", env: { ARCH: "riscv64" }, problems: [["ARCH", "expected x86_64"]] },
  {
    name: "ARCH mismatch with the distribution",
    env: { ARCH: "arm64" },
    problems: [
      [
        "ARCH",
        'ARCH="arm64": DISTRO=ubuntu-2404 is an x86_64 image; leave ARCH unset, or choose a ' +
          "distribution built for aarch64 (--list-distros aarch64 lists them) " +
          "(for example ARCH=x86_64)"
      ]
    ]
  },
  {
    name: "ARCH x86_64 on an arm64 distribution",
    env: { DISTRO: "ubuntu-2404-arm64", ARCH: "x86_64" },
    problems: [["ARCH", "DISTRO=ubuntu-2404-arm64 is an aarch64 image"]]
  },

  // Firmware and devices
  {
    name: "BOOT_MODE legacy on aarch64",
    env: { DISTRO: "debian-12-arm64", BOOT_MODE: "legacy" },
    problems: [["BOOT_MODE", "aarch64 guests boot only with uefi"]]
  },
  {
    name: "BOOT_MODE unknown",
    env: { BOOT_MODE: "bios" },
    problems: [["BOOT_MODE", "expected one of uefi, legacy or secure"]]
  },
  {
    name: "MACHINE unknown",
    env: { MACHINE: "microvm" },
    problems: [["MACHINE", "expected q35 or pc for x86_64"]]
  },
  {
    name: "MACHINE q35 on aarch64",
    env: { DISTRO: "debian-12-arm64", MACHINE: "q35" },
    problems: [["MACHINE", "expected virt for aarch64"]]
  },
  {
    name: "BOOT_MODE secure with MACHINE pc",
    env: { BOOT_MODE: "secure", MACHINE: "pc" },
    problems: [["MACHINE", "Secure Boot needs q35"]]
  },
  {
    name: "CPU_MODEL with a space",
    env: { CPU_MODEL: "host; rm -rf" },
    problems: [["CPU_MODEL", "expected host, host-passthrough or a QEMU CPU model name"]]
  },
  {
    name: "EXTRA_ARGS unterminated quote",
    env: { EXTRA_ARGS: '-name "vm' },
    problems: [["EXTRA_ARGS", 'unterminated " quote']]
  },
  {
    name: "HYPERV on aarch64",
    env: { DISTRO: "debian-12-arm64", HYPERV: "1" },
    problems: [["HYPERV", "Hyper-V enlightenments exist only for x86_64 guests"]]
  },
  {
    name: "GPU unknown",
    env: { GPU: "nvidia" },
    problems: [["GPU", "expected one of off or intel"]]
  },

  // Storage
  {
    name: "DISK_TYPE ide on q35",
    env: { DISK_TYPE: "ide" },
    problems: [["DISK_TYPE", "the q35 machine type has no IDE controller"]]
  },
  {
    name: "DISK_TYPE sata on aarch64",
    env: { DISTRO: "debian-12-arm64", DISK_TYPE: "sata" },
    problems: [["DISK_TYPE", "aarch64 guests support virtio, scsi and usb disks"]]
  },
  {
    name: "DISK_TYPE unknown",
    env: { DISK_TYPE: "floppy" },
    problems: [["DISK_TYPE", "expected one of virtio, scsi, nvme, sata, ide or usb"]]
  },
  {
    name: "DISK_IO native with a page cache",
    env: { DISK_IO: "native", DISK_CACHE: "writeback" },
    problems: [["DISK_IO", "QEMU allows io=native only with O_DIRECT caches"]]
  },
  {
    name: "DISK_IO and DISK_CACHE unknown",
    env: { DISK_IO: "aio", DISK_CACHE: "fast" },
    problems: [
      ["DISK_IO", "expected one of native, threads or io_uring"],
      ["DISK_CACHE", "expected one of none, writeback, writethrough, directsync or unsafe"]
    ]
  },
  {
    name: "DEVICE missing",
    env: { DEVICE: "/dev/sdz" },
    problems: [["DEVICE", "but it does not exist; pass it to the container with --device"]]
  },
  {
    name: "DEVICE2 is a file",
    env: { DEVICE2: "/images/disk.img" },
    host: { files: { "/images/disk.img": "" } },
    problems: [["DEVICE2", "it is a file, not a block device"]]
  },
  {
    name: "DEVICE1 and DEVICE7",
    env: { DEVICE1: "/dev/sdb", DEVICE7: "/dev/sdc" },
    problems: [
      ["DEVICE1", "passed-through block devices are DEVICE, then DEVICE2 to DEVICE6"],
      ["DEVICE7", "passed-through block devices are DEVICE, then DEVICE2 to DEVICE6"]
    ]
  },

  // Boot source
  {
    name: "BOOT_FROM broken URL",
    env: { BOOT_FROM: "http://[::1" },
    problems: [["BOOT_FROM", "expected a valid http:// or https:// URL"]]
  },
  {
    name: "BOOT_FROM other scheme",
    env: { BOOT_FROM: "ftp://example.com/a.iso" },
    problems: [["BOOT_FROM", "expected blank, an http:// or https:// URL, or a file path"]]
  },
  {
    name: "BOOT_FROM missing file",
    env: { BOOT_FROM: "/images/missing.iso" },
    problems: [["BOOT_FROM", "expected an image or ISO file, but no such file; in a container"]]
  },
  {
    name: "BOOT_FROM directory",
    env: { BOOT_FROM: "/images" },
    host: dirs("/images"),
    problems: [["BOOT_FROM", "but it is a directory"]]
  },
  {
    name: "BOOT_FROM unreadable",
    env: { BOOT_FROM: "/images/root-only.qcow2" },
    host: { files: { "/images/root-only.qcow2": "" }, unreadable: ["/images/root-only.qcow2"] },
    problems: [["BOOT_FROM", "the file is not readable by this user"]]
  },
  {
    name: "BOOT_ORDER unknown device",
    env: { BOOT_ORDER: "hd,usb" },
    problems: [["BOOT_ORDER", 'unknown device "usb"; expected a comma-separated list']]
  },
  {
    name: "BOOT_ORDER repeated device",
    env: { BOOT_ORDER: "hd,cdrom,hd" },
    problems: [["BOOT_ORDER", "hd twice"]]
  },

  // cloud-init
  {
    name: "CLOUD_INIT_USER_DATA missing",
    env: { CLOUD_INIT_USER_DATA: "/config/user-data" },
    problems: [["CLOUD_INIT_USER_DATA", "expected a cloud-init user-data file, but no such file"]]
  },
  {
    name: "CLOUD_INIT_USER_DATA directory",
    env: { CLOUD_INIT_USER_DATA: "/config" },
    host: dirs("/config"),
    problems: [["CLOUD_INIT_USER_DATA", "but it is a directory"]]
  },
  {
    name: "CLOUD_INIT_USER_DATA unreadable",
    env: { CLOUD_INIT_USER_DATA: "/config/user-data" },
    host: { files: { "/config/user-data": "#cloud-config\n" }, unreadable: ["/config/user-data"] },
    problems: [["CLOUD_INIT_USER_DATA", "the file is not readable by this user"]]
  },
  {
    name: "CLOUD_INIT_USER_DATA without a header",
    env: { CLOUD_INIT_USER_DATA: "/config/user-data" },
    host: { files: { "/config/user-data": "packages: [htop]\n" } },
    problems: [["CLOUD_INIT_USER_DATA", "cloud-init ignores a file that does not start with"]]
  },
  {
    name: "CLOUD_INIT_USER_DATA list",
    env: { CLOUD_INIT_USER_DATA: "/config/user-data" },
    host: { files: { "/config/user-data": "#cloud-config\n- a\n- b\n" } },
    problems: [["CLOUD_INIT_USER_DATA", "a #cloud-config file must be a YAML mapping"]]
  },
  {
    name: "CLOUD_INIT_USER_DATA broken YAML",
    env: { CLOUD_INIT_USER_DATA: "/config/user-data" },
    host: { files: { "/config/user-data": "#cloud-config\npackages: [htop\n" } },
    problems: [["CLOUD_INIT_USER_DATA", "the #cloud-config file is not valid YAML"]]
  },
  {
    name: "GUEST_PASSWORD with a line break",
    env: { GUEST_PASSWORD: "one\ntwo" },
    problems: [["GUEST_PASSWORD", "GUEST_PASSWORD (value hidden): a password cannot contain"]]
  },
  {
    name: "SSH_PUBKEY private key pasted",
    env: { SSH_PUBKEY: "-----BEGIN OPENSSH PRIVATE KEY-----" },
    problems: [["SSH_PUBKEY", "expected one OpenSSH public key per line"]]
  },

  // VM name
  {
    name: "GUEST_NAME ..",
    env: { GUEST_NAME: ".." },
    problems: [["GUEST_NAME", nameRule]]
  },
  { name: "GUEST_NAME /", env: { GUEST_NAME: "/" }, problems: [["GUEST_NAME", nameRule]] },
  {
    name: "GUEST_NAME path",
    env: { GUEST_NAME: "../etc" },
    problems: [["GUEST_NAME", nameRule]]
  },
  {
    name: "GUEST_NAME with a space",
    env: { GUEST_NAME: "my vm" },
    problems: [["GUEST_NAME", nameRule]]
  },
  {
    name: "GUEST_NAME of 64 characters",
    env: { GUEST_NAME: "a".repeat(64) },
    problems: [["GUEST_NAME", nameRule]]
  },
  {
    name: "GUEST_NAME starting with a dot",
    env: { GUEST_NAME: ".hidden" },
    problems: [["GUEST_NAME", nameRule]]
  },
  {
    name: "GUEST_NAME starting with a dash",
    env: { GUEST_NAME: "-rf" },
    problems: [["GUEST_NAME", nameRule]]
  },

  // Data directory and runtime
  {
    name: "DATA_DIR relative",
    env: { DATA_DIR: "data" },
    problems: [["DATA_DIR", "expected an absolute directory path other than /"]]
  },
  {
    name: "DATA_DIR root",
    env: { DATA_DIR: "//" },
    problems: [["DATA_DIR", "expected an absolute directory path other than /"]]
  },
  {
    name: "DATA_DIR is a file",
    env: { DATA_DIR: "/srv/vms" },
    host: { files: { "/srv/vms": "" } },
    problems: [["DATA_DIR", "expected a directory, but it is a file"]]
  },
  {
    name: "LIBVIRT_URI without a scheme",
    env: { LIBVIRT_URI: "/var/run/libvirt/libvirt-sock" },
    problems: [["LIBVIRT_URI", "expected a libvirt connection URI"]]
  },
  {
    name: "DOWNLOAD_RETRIES out of range",
    env: { DOWNLOAD_RETRIES: "0" },
    problems: [["DOWNLOAD_RETRIES", "expected a whole number from 1 to 10 attempts in total"]]
  },
  {
    name: "SHUTDOWN_TIMEOUT not a number",
    env: { SHUTDOWN_TIMEOUT: "1m" },
    problems: [["SHUTDOWN_TIMEOUT", "expected a whole number from 1 to 3600 seconds"]]
  },

  // Ports
  {
    name: "ports out of range",
    env: { SSH_PORT: "0", VNC_PORT: "65536", NOVNC_PORT: "http", REDFISH_PORT: "-1" },
    problems: [
      ["SSH_PORT", "expected a whole number from 1 to 65535 (for example SSH_PORT=2222)"],
      ["VNC_PORT", "expected a whole number from 1 to 65535"],
      ["NOVNC_PORT", "expected a whole number from 1 to 65535"],
      ["REDFISH_PORT", "expected a whole number from 1 to 65535"]
    ]
  },
  {
    name: "PORT_FWD collides with the default SSH_PORT",
    env: { PORT_FWD: "2222:22" },
    problems: [
      [
        "PORT_FWD",
        "host TCP port 2222 is already used by SSH_PORT; give each service its own port " +
          "(for example PORT_FWD=2223:22)"
      ]
    ]
  },
  {
    name: "PORT_FWD duplicate entries",
    env: { PORT_FWD: "8080:80,8080:80" },
    problems: [["PORT_FWD", "port 8080 is already used by another PORT_FWD entry"]]
  },
  {
    name: "PORT_FWD same host port to two guest ports",
    env: { PORT_FWD: "8080:80,8080:8080/tcp,8080:53/udp" },
    problems: [["PORT_FWD", "TCP port 8080 is already used by another PORT_FWD entry"]]
  },
  {
    name: "VNC_PORT collides with the default SSH_PORT",
    env: { GRAPHICS: "vnc", VNC_PORT: "2222" },
    problems: [["VNC_PORT", "TCP port 2222 is already used by SSH_PORT"]]
  },
  {
    name: "SSH_PORT set onto the default VNC_PORT",
    env: { GRAPHICS: "vnc", SSH_PORT: "5900" },
    problems: [["SSH_PORT", "TCP port 5900 is already used by VNC_PORT"]]
  },
  {
    name: "NOVNC_PORT collides with VNC_PORT",
    env: { GRAPHICS: "novnc", NOVNC_PORT: "5900" },
    problems: [
      [
        "NOVNC_PORT",
        "used by VNC_PORT; give each service its own port (for example NOVNC_PORT=5901)"
      ]
    ]
  },
  {
    name: "REDFISH_PORT collides with NOVNC_PORT",
    env: {
      GRAPHICS: "novnc",
      REDFISH_ENABLE: "1",
      REDFISH_PASSWORD: "s3cret",
      REDFISH_PORT: "6080"
    },
    problems: [["REDFISH_PORT", "port 6080 is already used by NOVNC_PORT"]]
  },
  {
    name: "PORT_FWD collides with every service",
    env: {
      GRAPHICS: "novnc",
      REDFISH_ENABLE: "1",
      REDFISH_PASSWORD: "s3cret",
      PORT_FWD: "2222:22,5900:5900,6080:80,8443:443"
    },
    problems: [
      ["PORT_FWD", "port 2222 is already used by SSH_PORT"],
      ["PORT_FWD", "port 5900 is already used by VNC_PORT"],
      ["PORT_FWD", "port 6080 is already used by NOVNC_PORT"],
      ["PORT_FWD", "port 8443 is already used by REDFISH_PORT"]
    ]
  },
  {
    name: "disabled services claim no ports",
    env: { VNC_PORT: "2222", NOVNC_PORT: "2222", REDFISH_PORT: "2222" },
    problems: []
  },
  {
    name: "PORT_FWD entries malformed",
    env: { PORT_FWD: "8080,80:0,70000:80,8080:80/sctp,a:b" },
    problems: [
      ["PORT_FWD", 'invalid entry "8080"'],
      ["PORT_FWD", 'invalid entry "80:0"'],
      ["PORT_FWD", 'invalid entry "70000:80"'],
      ["PORT_FWD", 'invalid entry "8080:80/sctp"'],
      ["PORT_FWD", 'invalid entry "a:b"']
    ]
  },
  {
    name: "PORT_FWD without a NAT NIC",
    env: { NETWORK_MODE: "bridge", NETWORK_BRIDGE: "br0", PORT_FWD: "8080:80" },
    host: { netDevices: { br0: "bridge" } },
    problems: [
      ["PORT_FWD", "port forwards need a NIC in NAT mode, but every NIC is bridge or direct"]
    ]
  },

  // Networking
  {
    name: "NETWORK_MODE unknown",
    env: { NETWORK_MODE: "host" },
    problems: [["NETWORK_MODE", "expected one of nat, bridge or direct"]]
  },
  {
    name: "NETWORK_BRIDGE unset",
    env: { NETWORK_MODE: "bridge" },
    problems: [
      [
        "NETWORK_BRIDGE",
        "NETWORK_BRIDGE is not set: NETWORK_MODE=bridge needs the name of a host bridge; 'ip link"
      ]
    ]
  },
  {
    name: "NETWORK_BRIDGE missing",
    env: { NETWORK_MODE: "bridge", NETWORK_BRIDGE: "br9" },
    problems: [["NETWORK_BRIDGE", "needs the name of a host bridge, but br9 does not exist"]]
  },
  {
    name: "NETWORK_BRIDGE not a bridge",
    env: { NETWORK_MODE: "bridge", NETWORK_BRIDGE: "eth0" },
    problems: [["NETWORK_BRIDGE", "but eth0 is not a bridge"]]
  },
  {
    name: "NETWORK_DIRECT_DEV missing",
    env: { NETWORK_MODE: "direct", NETWORK_DIRECT_DEV: "eth9" },
    problems: [["NETWORK_DIRECT_DEV", "NETWORK_MODE=direct needs an existing host network"]]
  },
  {
    name: "NETWORK_DIRECT_DEV unset",
    env: { NETWORK_MODE: "direct" },
    problems: [["NETWORK_DIRECT_DEV", "NETWORK_DIRECT_DEV is not set"]]
  },
  {
    name: "NETWORK_MAC malformed",
    env: { NETWORK_MAC: "52-54-00-12-34-56" },
    problems: [["NETWORK_MAC", "expected a unicast MAC address: six pairs of hex digits"]]
  },
  {
    name: "NETWORK_MAC multicast",
    env: { NETWORK_MAC: "01:00:5e:00:00:01" },
    problems: [["NETWORK_MAC", "lowest bit of the first pair clear"]]
  },
  {
    name: "NETWORK2_MAC repeats NIC 1",
    env: { NETWORK2_MODE: "nat", NETWORK2_MAC: "52:54:00:b2:25:3c" },
    problems: [
      [
        "NETWORK2_MAC",
        "NIC 1 already uses MAC 52:54:00:b2:25:3c; give each NIC its own address, or leave " +
          "NETWORK2_MAC unset to derive one (for example NETWORK2_MAC=52:54:00:46:ee:b1)"
      ]
    ]
  },
  {
    name: "NETWORK_MAC takes the address NIC 2 derives",
    env: { NETWORK_MAC: "52:54:00:46:ee:b1", NETWORK2_MODE: "nat" },
    problems: [["NETWORK_MAC", "NIC 2 already uses MAC 52:54:00:46:ee:b1"]]
  },
  {
    name: "NETWORK_MODEL unknown",
    env: { NETWORK_MODEL: "virtio-net" },
    problems: [["NETWORK_MODEL", "expected one of virtio, e1000, e1000e"]]
  },
  {
    name: "NETWORK_MTU out of range",
    env: { NETWORK_MTU: "0", NETWORK2_MODE: "nat", NETWORK2_MTU: "70000" },
    problems: [
      ["NETWORK_MTU", "expected a whole number from 68 to 65535"],
      ["NETWORK2_MTU", "(for example NETWORK2_MTU=1400)"]
    ]
  },
  {
    name: "NETWORK1 variables",
    env: { NETWORK1_MODE: "bridge" },
    problems: [
      [
        "NETWORK1_MODE",
        "the first NETWORK variables have no number, and numbered ones start at NETWORK2_* " +
          "(for example NETWORK_MODE=bridge)"
      ]
    ]
  },
  {
    name: "NETWORK index above the maximum",
    env: { NETWORK22_MODE: "nat" },
    problems: [
      [
        "NETWORK22_MODE",
        "numbered NETWORK variables go from NETWORK2_* to NETWORK16_* " +
          "(for example NETWORK2_MODE=nat)"
      ]
    ]
  },
  {
    name: "NETWORK02 with a leading zero",
    env: { NETWORK02_MODE: "nat" },
    problems: [
      [
        "NETWORK02_MODE",
        "numbered NETWORK variables are written without leading zeros " +
          "(for example NETWORK2_MODE=nat)"
      ]
    ]
  },
  {
    name: "NETWORK3 without NETWORK2",
    env: { NETWORK3_MODE: "bridge", NETWORK3_BRIDGE: "br0" },
    host: { netDevices: { br0: "bridge" } },
    problems: [
      [
        "NETWORK3_MODE",
        'NETWORK3_MODE="bridge": numbered NETWORK variables must count up from 2 without gaps, ' +
          "and NETWORK2_* is not set; renumber them (for example NETWORK2_MODE=bridge)"
      ]
    ]
  },
  {
    name: "NETWORK2 and NETWORK5 leave two gaps",
    env: { NETWORK2_MODE: "nat", NETWORK5_MODE: "nat", NETWORK7_MODE: "nat" },
    problems: [
      ["NETWORK5_MODE", "NETWORK3_* is not set"],
      ["NETWORK7_MODE", "NETWORK6_* is not set"]
    ]
  },
  {
    name: "NETWORK2 without its MODE",
    env: { NETWORK2_MAC: "02:00:00:00:00:02", NETWORK2_MODEL: "e1000" },
    problems: [
      [
        "NETWORK2_MODE",
        "NETWORK2_MODE is not set: required because NETWORK2_MAC and NETWORK2_MODEL are set " +
          "(for example NETWORK2_MODE=nat)"
      ]
    ]
  },
  {
    name: "NETWORK3 gap without its MODE",
    env: { NETWORK3_MAC: "02:00:00:00:00:03" },
    problems: [
      ["NETWORK3_MAC", "NETWORK2_* is not set; renumber them (for example NETWORK2_MAC="],
      ["NETWORK3_MODE", "required because NETWORK3_MAC is set"]
    ]
  },
  {
    name: "IPXE_ENABLE without a ROM",
    env: { IPXE_ENABLE: "1", NETWORK_MODEL: "e1000" },
    problems: [["IPXE_ENABLE", "no iPXE ROM for NETWORK_MODEL=e1000"]]
  },
  {
    name: "IPXE_ROM_PATH missing",
    env: { IPXE_ROM_PATH: "/roms/missing.rom" },
    problems: [["IPXE_ROM_PATH", "expected the path of an iPXE option ROM file"]]
  },

  // Filesystem shares
  {
    name: "FILESYSTEM_SOURCE relative",
    env: { FILESYSTEM_SOURCE: "share" },
    problems: [["FILESYSTEM_SOURCE", "expected the absolute path of a directory to share"]]
  },
  {
    name: "FILESYSTEM_SOURCE is a file",
    env: { FILESYSTEM_SOURCE: "/share" },
    host: { files: { "/share": "" } },
    problems: [["FILESYSTEM_SOURCE", "expected a directory, but it is a file"]]
  },
  {
    name: "FILESYSTEM_SOURCE unset with TARGET",
    env: { FILESYSTEM_TARGET: "data" },
    problems: [
      [
        "FILESYSTEM_SOURCE",
        "FILESYSTEM_SOURCE is not set: expected the absolute path of a directory to share " +
          "(for example FILESYSTEM_SOURCE=/share)"
      ]
    ]
  },
  {
    name: "FILESYSTEM2 without the first share",
    env: { FILESYSTEM2_SOURCE: "/logs", FILESYSTEM2_DRIVER: "nfs" },
    host: dirs("/logs"),
    problems: [
      ["FILESYSTEM_SOURCE", "required because numbered FILESYSTEMn_* variables are set"],
      ["FILESYSTEM2_DRIVER", "expected one of virtiofs or 9p"]
    ]
  },
  {
    name: "FILESYSTEM2 without its SOURCE",
    env: { FILESYSTEM_SOURCE: "/share", FILESYSTEM2_TARGET: "logs" },
    host: dirs("/share"),
    problems: [
      [
        "FILESYSTEM2_SOURCE",
        "required because FILESYSTEM2_TARGET is set (for example FILESYSTEM2_SOURCE=/share2)"
      ]
    ]
  },
  {
    name: "FILESYSTEM3 without FILESYSTEM2",
    env: { FILESYSTEM_SOURCE: "/share", FILESYSTEM3_SOURCE: "/logs" },
    host: dirs("/share", "/logs"),
    problems: [["FILESYSTEM3_SOURCE", "(for example FILESYSTEM2_SOURCE=/logs)"]]
  },
  {
    name: "FILESYSTEM read-only share missing",
    env: { FILESYSTEM_SOURCE: "/share", FILESYSTEM_READONLY: "1" },
    problems: [["FILESYSTEM_SOURCE", "a read-only share must exist"]]
  },
  {
    name: "FILESYSTEM virtiofs with mapped",
    env: { FILESYSTEM_SOURCE: "/share", FILESYSTEM_ACCESSMODE: "mapped" },
    host: dirs("/share"),
    problems: [
      [
        "FILESYSTEM_ACCESSMODE",
        "virtiofs supports only passthrough; set FILESYSTEM_DRIVER=9p for mapped or squash"
      ]
    ]
  },
  {
    name: "FILESYSTEM_ACCESSMODE unknown",
    env: { FILESYSTEM_SOURCE: "/share", FILESYSTEM_ACCESSMODE: "none", FILESYSTEM_DRIVER: "9p" },
    host: dirs("/share"),
    problems: [["FILESYSTEM_ACCESSMODE", "expected one of passthrough, mapped or squash"]]
  },
  {
    name: "FILESYSTEM_TARGET invalid",
    env: { FILESYSTEM_SOURCE: "/share", FILESYSTEM_TARGET: "my tag" },
    host: dirs("/share"),
    problems: [["FILESYSTEM_TARGET", `expected a tag of ${tagRule}`]]
  },
  {
    name: "FILESYSTEM_TARGET too long",
    env: { FILESYSTEM_SOURCE: "/share", FILESYSTEM_TARGET: "t".repeat(37) },
    host: dirs("/share"),
    problems: [["FILESYSTEM_TARGET", "at most 36 characters"]]
  },
  {
    name: "FILESYSTEM tag cannot be derived",
    env: { FILESYSTEM_SOURCE: "/" },
    host: dirs("/"),
    problems: [["FILESYSTEM_TARGET", "no tag can be derived from FILESYSTEM_SOURCE=/"]]
  },
  {
    name: "FILESYSTEM_TARGET repeated",
    env: {
      FILESYSTEM_SOURCE: "/a",
      FILESYSTEM_TARGET: "data",
      FILESYSTEM2_SOURCE: "/b",
      FILESYSTEM2_TARGET: "data"
    },
    host: dirs("/a", "/b"),
    problems: [["FILESYSTEM2_TARGET", 'FILESYSTEM2_TARGET="data": the tag data is already used']]
  },
  {
    name: "FILESYSTEM tags collide",
    env: { FILESYSTEM_SOURCE: "/a/share", FILESYSTEM2_SOURCE: "/b/share" },
    host: dirs("/a/share", "/b/share"),
    problems: [
      [
        "FILESYSTEM2_TARGET",
        "FILESYSTEM2_TARGET is not set: the tag share, derived from FILESYSTEM2_SOURCE, is " +
          "already used by another share; give each share its own tag " +
          "(for example FILESYSTEM2_TARGET=share2)"
      ]
    ]
  },

  // Graphics and Redfish
  {
    name: "VNC_KEYMAP unknown",
    env: { VNC_KEYMAP: "german" },
    problems: [["VNC_KEYMAP", "expected one of QEMU's keymaps: ar, bepo"]]
  },
  {
    name: "VNC_KEYMAP shaped like one but not shipped",
    env: { VNC_KEYMAP: "zz" },
    problems: [["VNC_KEYMAP", "expected one of QEMU's keymaps"]]
  },
  {
    name: "TLS files missing",
    env: { TLS_CERT_FILE: "/config/tls.crt", TLS_KEY_FILE: "/config/tls.key" },
    problems: [
      ["TLS_CERT_FILE", "no such file; bind-mount it into the container"],
      ["TLS_KEY_FILE", "no such file; bind-mount it into the container"]
    ]
  },
  {
    name: "TLS_CERT_FILE without a key",
    env: { TLS_CERT_FILE: "/config/tls.crt" },
    host: { files: { "/config/tls.crt": "" } },
    problems: [
      [
        "TLS_KEY_FILE",
        "TLS_CERT_FILE and TLS_KEY_FILE must be set together (for example TLS_KEY_FILE="
      ]
    ]
  },
  {
    name: "REDFISH_USERNAME with a colon",
    env: { REDFISH_USERNAME: "admin:root" },
    problems: [["REDFISH_USERNAME", "HTTP basic authentication forbids ':'"]]
  },
  {
    name: "REDFISH_SYSTEM_ID with a slash",
    env: { REDFISH_SYSTEM_ID: "a/b" },
    problems: [["REDFISH_SYSTEM_ID", "it appears in URLs"]]
  },

  // Sanity: a full valid configuration has no problems.
  {
    name: "large valid configuration",
    env: {
      DISTRO: "debian-13",
      MEMORY: "8G",
      CPUS: "4",
      DISK_SIZE: "64G",
      DISK2_SIZE: "100G",
      GRAPHICS: "novnc",
      PORT_FWD: "8080:80,5353:53/udp",
      REDFISH_ENABLE: "1",
      REDFISH_PASSWORD: "s3cret",
      FILESYSTEM_SOURCE: "/share",
      FILESYSTEM_DRIVER: "9p",
      NETWORK2_MODE: "nat"
    },
    host: { ...dirs("/share"), freeBytes: { "/": 1024 * GiB } },
    problems: []
  }
]
