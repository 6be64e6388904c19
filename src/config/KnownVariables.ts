/** Every variable vm-runner reads, apart from the numbered families matched below. */
export const knownVariables: ReadonlyArray<string> = [
  "DISTRO",
  "MEMORY",
  "CPUS",
  "DISK_SIZE",
  "DISK_TYPE",
  "ALLOCATE",
  "BOOT_FROM",
  "BLANK_DISK",
  "BOOT_ORDER",
  "CLOUD_INIT",
  "CLOUD_INIT_USER_DATA",
  "ARCH",
  "CPU_MODEL",
  "EXTRA_ARGS",
  "DOWNLOAD_RETRIES",
  "BOOT_MODE",
  "TPM",
  "MACHINE",
  "DISK_IO",
  "DISK_CACHE",
  "IO_THREAD",
  "BALLOON",
  "RNG",
  "USB",
  "HYPERV",
  "GPU",
  "GUEST_NAME",
  "GUEST_PASSWORD",
  "SSH_PORT",
  "SSH_PUBKEY",
  "PERSIST",
  "FORCE_ISO",
  "NO_CONSOLE",
  "PORT_FWD",
  "IPXE_ENABLE",
  "IPXE_ROM_PATH",
  "GRAPHICS",
  "VNC_PORT",
  "NOVNC_PORT",
  "VNC_KEYMAP",
  "VNC_PASSWORD",
  "TLS_CERT_FILE",
  "TLS_KEY_FILE",
  "REDFISH_ENABLE",
  "REDFISH_PORT",
  "REDFISH_USERNAME",
  "REDFISH_PASSWORD",
  "REDFISH_SYSTEM_ID",
  "REDFISH_STORAGE_POOL",
  "REDFISH_STORAGE_PATH",
  "DATA_DIR",
  "REQUIRE_KVM",
  "LIBVIRT_URI",
  "LOG_VERBOSE",
  "SHUTDOWN_TIMEOUT",
  "DISTROS_FILE",
  "DEVICE",
  "NETWORK_MODE",
  "NETWORK_BRIDGE",
  "NETWORK_DIRECT_DEV",
  "NETWORK_MAC",
  "NETWORK_MODEL",
  "NETWORK_MTU",
  "NETWORK_BOOT",
  "FILESYSTEM_SOURCE",
  "FILESYSTEM_TARGET",
  "FILESYSTEM_DRIVER",
  "FILESYSTEM_ACCESSMODE",
  "FILESYSTEM_READONLY"
]

const numberedFamilies: ReadonlyArray<RegExp> = [
  /^DISK[2-6]_SIZE$/,
  /^DEVICE[2-6]$/,
  /^NETWORK\d+_(MODE|BRIDGE|DIRECT_DEV|MAC|MODEL|MTU|BOOT)$/,
  /^FILESYSTEM\d+_(SOURCE|TARGET|DRIVER|ACCESSMODE|READONLY)$/
]

/** Names the Python docker-vm-runner read before it renamed them. */
const renamed: Readonly<Record<string, string>> = {
  VM_MEMORY: "MEMORY",
  VM_CPUS: "CPUS",
  VM_DISK_SIZE: "DISK_SIZE",
  VM_DISPLAY: "GRAPHICS",
  VM_ARCH: "ARCH",
  QEMU_CPU: "CPU_MODEL",
  VM_PASSWORD: "GUEST_PASSWORD",
  VM_SSH_PORT: "SSH_PORT",
  VM_NAME: "GUEST_NAME",
  VM_PERSIST: "PERSIST",
  VM_SSH_PUBKEY: "SSH_PUBKEY",
  BASE_IMAGE: "BOOT_FROM",
  BOOT_ISO: "BOOT_FROM",
  BOOT_ISO_URL: "BOOT_FROM"
}

export const isKnownVariable = (name: string): boolean =>
  knownVariables.includes(name) || numberedFamilies.some((pattern) => pattern.test(name))

/** Levenshtein distance, bounded: returns `limit + 1` as soon as it is exceeded. */
export const editDistance = (a: string, b: string, limit: number): number => {
  if (Math.abs(a.length - b.length) > limit) return limit + 1
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    let rowMin = i
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      const value = Math.min(
        (previous[j] ?? 0) + 1,
        (current[j - 1] ?? 0) + 1,
        (previous[j - 1] ?? 0) + cost
      )
      current.push(value)
      rowMin = Math.min(rowMin, value)
    }
    if (rowMin > limit) return limit + 1
    previous = current
  }
  return previous[b.length] ?? limit + 1
}

/** The canonical form of a numbered variable, so NETWORK3_MODLE is compared with NETWORK_MODEL. */
const unnumbered = (name: string) => name.replace(/^(NETWORK|FILESYSTEM|DISK|DEVICE)\d+/, "$1")

/**
 * Warns about variables that look like misspelt or renamed vm-runner variables. Short names get
 * a tighter limit so that common variables such as TERM or USER are not reported.
 */
export const typoWarnings = (env: Readonly<Record<string, string | undefined>>): Array<string> => {
  const warnings: Array<string> = []
  for (const name of Object.keys(env)) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(name) || isKnownVariable(name)) continue
    const replacement = renamed[name]
    if (replacement !== undefined) {
      warnings.push(`${name} is no longer read; use ${replacement}`)
      continue
    }
    const candidate = unnumbered(name)
    const limit = candidate.length <= 5 ? 1 : 2
    const match = knownVariables.find((known) => editDistance(candidate, known, limit) <= limit)
    if (match !== undefined)
      warnings.push(`${name} is not a vm-runner variable; did you mean ${match}?`)
  }
  return warnings
}
