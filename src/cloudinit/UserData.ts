import { stringify } from "yaml"
import type { VmConfig } from "../domain/Config.ts"
import { sha512Crypt } from "./Sha512Crypt.ts"

/** The `meta-data` document of the NoCloud datasource. */
export interface MetaData {
  readonly "instance-id": string
  readonly "local-hostname": string
}

export interface CloudConfigUser {
  readonly name: string
  readonly lock_passwd: boolean
  readonly passwd: string
  readonly sudo: string
  readonly ssh_authorized_keys?: ReadonlyArray<string>
}

/** The subset of cloud-config keys vm-runner writes. */
export interface CloudConfig {
  readonly users: ReadonlyArray<CloudConfigUser | "default">
  readonly ssh_pwauth: boolean
  readonly chpasswd: { readonly expire: boolean }
  readonly mounts?: ReadonlyArray<ReadonlyArray<string>>
  readonly bootcmd?: ReadonlyArray<ReadonlyArray<string>>
  readonly runcmd: ReadonlyArray<ReadonlyArray<string>>
}

/** One NIC of a `network-config` document, matched by its MAC address. */
export interface NetworkConfigEthernet {
  readonly match: { readonly macaddress: string }
  readonly dhcp4: boolean
  readonly dhcp6: boolean
  readonly mtu?: number
  readonly optional: boolean
}

/** A `network-config` document, version 2, one DHCP entry per NIC. */
export interface NetworkConfig {
  readonly version: 2
  readonly ethernets: Readonly<Record<string, NetworkConfigEthernet>>
}

/**
 * Installs, unblocks and starts the guest agent whatever the distribution. It installs a
 * package only when the agent is missing, so images that ship it boot without a package
 * download. RHEL-family images block guest-exec in /etc/sysconfig/qemu-ga (FILTER_RPC_ARGS on
 * RHEL 9, BLACKLIST_RPC on RHEL 8): only the two guest-exec commands are allowed, and SELinux's
 * virt_qemu_ga_run_unconfined boolean lets them run commands. Alpine has no udev name for the
 * agent's port, so the script finds it by name.
 */
export const guestAgentScript = `set -u
if ! command -v qemu-ga >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-guest-agent
  elif command -v dnf >/dev/null 2>&1; then dnf install -y qemu-guest-agent
  elif command -v yum >/dev/null 2>&1; then yum install -y qemu-guest-agent
  elif command -v zypper >/dev/null 2>&1; then zypper -n install qemu-guest-agent
  elif command -v apk >/dev/null 2>&1; then apk add qemu-guest-agent
  elif command -v pacman >/dev/null 2>&1; then pacman -Sy --noconfirm qemu-guest-agent
  elif command -v pkg >/dev/null 2>&1; then pkg install -y qemu-guest-agent
  fi
fi
if [ -f /etc/sysconfig/qemu-ga ]; then
  sed -i -e '/^FILTER_RPC_ARGS=/s/--allow-rpcs=/--allow-rpcs=guest-exec,guest-exec-status,/' \\
    -e '/^BLACKLIST_RPC=/s/guest-exec-status,\\{0,1\\}//' \\
    -e '/^BLACKLIST_RPC=/s/guest-exec,\\{0,1\\}//' /etc/sysconfig/qemu-ga
fi
if command -v setsebool >/dev/null 2>&1; then setsebool -P virt_qemu_ga_run_unconfined 1 || true; fi
if [ -d /etc/conf.d ] && [ ! -e /dev/virtio-ports/org.qemu.guest_agent.0 ]; then
  for port in /sys/class/virtio-ports/*; do
    if [ "$(cat "$port/name" 2>/dev/null)" = org.qemu.guest_agent.0 ]; then
      echo "GA_PATH=/dev/$(basename "$port")" > /etc/conf.d/qemu-guest-agent
    fi
  done
fi
if command -v systemctl >/dev/null 2>&1; then
  systemctl enable qemu-guest-agent 2>/dev/null || true
  systemctl restart qemu-guest-agent || true
elif command -v rc-update >/dev/null 2>&1; then
  rc-update add qemu-guest-agent default && rc-service qemu-guest-agent restart
elif command -v sysrc >/dev/null 2>&1; then
  sysrc qemu_guest_agent_enable=YES && service qemu-guest-agent restart
fi
exit 0
`

/** Gives the login user bash where the image has it; images without bash keep their shell. */
export const loginShellScript = (user: string) =>
  `if [ -x /bin/bash ] && command -v usermod >/dev/null 2>&1; then usermod -s /bin/bash ${user}; fi`

const mountOptions = (share: VmConfig["filesystems"][number]): string => {
  const base =
    share.driver === "virtiofs"
      ? "defaults,nofail"
      : "trans=virtio,version=9p2000.L,msize=262144,nofail"
  return share.readonly ? `${base},ro` : base
}

/** Ethernet's standard MTU, the one a guest uses by default. */
const defaultMtu = 1500

/**
 * Tells whether the guest learns a NIC's MTU only from cloud-init. libvirt and vm-runner give
 * virtio-net the MTU through the device itself (`host_mtu`), except on direct (macvtap) NICs,
 * where libvirt accepts no MTU; QEMU's other NIC models have no such field.
 */
const mtuNeedsGuestConfig = (nic: VmConfig["network"]["nics"][number]) =>
  nic.mtu !== undefined &&
  nic.mtu !== defaultMtu &&
  (nic.model !== "virtio" || nic.mode === "direct")

/**
 * Builds a shell script that sets, by MAC address, the MTU of each NIC that only the guest can
 * set, or undefined when there is none. `network-config` carries the same MTUs, but Debian 12's
 * ifupdown ignores `mtu` on a DHCP interface. The script runs as a `bootcmd` on every boot,
 * which on Debian is after ifupdown has brought the interfaces up.
 */
export const guestMtuScript = (nics: VmConfig["network"]["nics"]): string | undefined => {
  const cases = nics
    .filter(mtuNeedsGuestConfig)
    .map((nic) => `    ${nic.mac}) ip link set dev "$(basename "$dev")" mtu ${nic.mtu} ;;`)
  if (cases.length === 0) return undefined
  return [
    "for dev in /sys/class/net/*; do",
    '  case "$(cat "$dev/address" 2>/dev/null)" in',
    ...cases,
    "  esac",
    "done",
    ""
  ].join("\n")
}

export const buildMetaData = (config: VmConfig, instanceId: string): MetaData => ({
  "instance-id": instanceId,
  "local-hostname": config.name
})

/**
 * Builds the built-in cloud-config: the login user, password and keys, the guest agent, a mount
 * per share, and the MTUs that only the guest can set. Password logins over SSH stay off when the
 * only password is the published default and a key is given.
 */
export const buildCloudConfig = (config: VmConfig, salt?: string): CloudConfig => {
  const { cloudInit } = config
  const user: CloudConfigUser = {
    name: cloudInit.user,
    lock_passwd: false,
    passwd: sha512Crypt(cloudInit.password, salt),
    sudo: "ALL=(ALL) NOPASSWD:ALL",
    ...(cloudInit.sshPublicKey === undefined
      ? {}
      : {
          ssh_authorized_keys: cloudInit.sshPublicKey
            .split("\n")
            .map((line) => line.trim())
            .filter((line) => line !== "")
        })
  }
  const mounts = config.filesystems.map((share) => [
    share.tag,
    `/mnt/${share.tag}`,
    share.driver,
    mountOptions(share),
    "0",
    "0"
  ])
  const mtuScript = guestMtuScript(config.network.nics)
  return {
    users: [user],
    ssh_pwauth: !(cloudInit.passwordIsDefault && cloudInit.sshPublicKey !== undefined),
    chpasswd: { expire: false },
    ...(mounts.length === 0 ? {} : { mounts }),
    ...(mtuScript === undefined ? {} : { bootcmd: [["sh", "-c", mtuScript]] }),
    runcmd: [
      ["sh", "-c", guestAgentScript],
      ["sh", "-c", loginShellScript(cloudInit.user)]
    ]
  }
}

/**
 * Builds `network-config`: DHCP on every NIC, with its MTU where one is set. It is written
 * when there are several NICs or when a NIC's MTU can reach the guest no other way, and
 * cloud-init's fallback (DHCP on the first NIC) covers the other cases.
 *
 * IPv6 comes from router advertisements (SLAAC), which Linux accepts by default and which both
 * QEMU's user networking and passt send (passt(1): a prefix via NDP option type 3). `dhcp6`
 * stays off because QEMU's user networking has no stateful DHCPv6 server, and Debian 12's
 * ifupdown then delays the boot by minutes while `dhclient -6` waits for a reply.
 */
export const buildNetworkConfig = (config: VmConfig): NetworkConfig | undefined => {
  const { nics } = config.network
  if (nics.length < 2 && !nics.some(mtuNeedsGuestConfig)) return undefined
  const ethernets: Record<string, NetworkConfigEthernet> = {}
  for (const nic of nics) {
    const mtu = nic.mtu !== undefined && nic.mtu !== defaultMtu ? nic.mtu : undefined
    ethernets[`nic${nic.index}`] = {
      match: { macaddress: nic.mac },
      dhcp4: true,
      dhcp6: false,
      ...(mtu === undefined ? {} : { mtu }),
      optional: nic.index !== 1
    }
  }
  return { version: 2, ethernets }
}

export const renderYaml = (document: object): string => stringify(document, { lineWidth: 0 })

/** The `#cloud-config` document, with the header line cloud-init requires. */
export const renderCloudConfig = (cloudConfig: CloudConfig): string =>
  `#cloud-config\n${renderYaml(cloudConfig)}`

/**
 * cloud-init's merge rule for the built-in part: lists are appended and existing keys are kept,
 * so a user file that sets its own packages, runcmd, users, mounts or write_files keeps them
 * and still gets the login user, the guest agent and the share mounts.
 */
export const builtInMergeType = "list(append)+dict(no_replace,recurse_list)+str()"

/** MIME types of the user-data formats cloud-init recognises by their first line. */
const userDataTypes: ReadonlyArray<readonly [string, string]> = [
  ["#cloud-config", "text/cloud-config"],
  ["#!", "text/x-shellscript"],
  ["#include", "text/x-include-url"],
  ["#cloud-boothook", "text/cloud-boothook"],
  ["#part-handler", "text/part-handler"],
  ["## template: jinja", "text/jinja2"]
]

/**
 * Encodes one part's text. cloud-init decodes a part with Python's email package, which turns
 * 8-bit text into Latin-1 bytes and `\uXXXX` escapes, so text with non-ASCII characters
 * travels as base64 (RFC 2045: lines of at most 76 characters).
 */
const encodePart = (text: string): { headers: ReadonlyArray<string>; body: string } => {
  if (!/[^\x00-\x7f]/.test(text)) return { headers: [], body: text }
  const base64 = Buffer.from(text, "utf8").toString("base64")
  const lines = base64.match(/.{1,76}/g) ?? []
  return { headers: ["Content-Transfer-Encoding: base64"], body: `${lines.join("\n")}\n` }
}

/**
 * Combines the user's user-data file with the built-in cloud-config as a MIME multipart
 * document: the user's part first, then the built-in part with `builtInMergeType`. A user file
 * that is itself MIME becomes a nested multipart part with its own headers.
 */
export const renderMultipart = (builtIn: string, userData: string, boundary: string): string => {
  const start = userData.trimStart()
  const body = userData.endsWith("\n") ? userData : `${userData}\n`
  // cloud-init reads user-data as MIME when `mime-version:` occurs in its first 4096 bytes
  // (cloudinit/user_data.py), so a document whose first header is MIME-Version is MIME too.
  const isMime = /^content-type:/i.test(start) || /mime-version:/i.test(userData.slice(0, 4096))
  const type =
    userDataTypes.find(([prefix]) => start.startsWith(prefix))?.[1] ?? "text/cloud-config"
  const userEncoded = encodePart(body)
  const userPart = isMime
    ? [body]
    : [
        `Content-Type: ${type}; charset="utf-8"`,
        ...userEncoded.headers,
        'Content-Disposition: attachment; filename="user-data"',
        "",
        userEncoded.body
      ]
  const builtInEncoded = encodePart(builtIn)
  return [
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    "MIME-Version: 1.0",
    "",
    `--${boundary}`,
    ...userPart,
    `--${boundary}`,
    'Content-Type: text/cloud-config; charset="utf-8"',
    ...builtInEncoded.headers,
    `Merge-Type: ${builtInMergeType}`,
    'Content-Disposition: attachment; filename="vm-runner.cfg"',
    "",
    builtInEncoded.body,
    `--${boundary}--`,
    ""
  ].join("\n")
}
