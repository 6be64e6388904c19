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

/**
 * Edit distance counting an insertion, deletion, substitution or swap of two neighbouring
 * characters as one edit (optimal string alignment), so MEMROY is one edit from MEMORY.
 * Bounded: returns `limit + 1` as soon as the distance must exceed `limit`.
 */
export const editDistance = (a: string, b: string, limit: number): number => {
  if (Math.abs(a.length - b.length) > limit) return limit + 1
  const width = b.length + 1
  // Three rolling rows of the dynamic-programming table, as typed arrays: this runs for every
  // environment variable against every known name at each start, before the JIT warms up.
  let beforePrevious = new Int32Array(width)
  let previous = new Int32Array(width)
  let current = new Int32Array(width)
  for (let j = 0; j < width; j++) previous[j] = j
  for (let i = 1; i <= a.length; i++) {
    current[0] = i
    let rowMin = i
    const ai = a.charCodeAt(i - 1)
    for (let j = 1; j < width; j++) {
      const bj = b.charCodeAt(j - 1)
      let value = (previous[j - 1] as number) + (ai === bj ? 0 : 1)
      const deletion = (previous[j] as number) + 1
      const insertion = (current[j - 1] as number) + 1
      if (deletion < value) value = deletion
      if (insertion < value) value = insertion
      if (i > 1 && j > 1 && ai === b.charCodeAt(j - 2) && a.charCodeAt(i - 2) === bj) {
        const swap = (beforePrevious[j - 2] as number) + 1
        if (swap < value) value = swap
      }
      current[j] = value
      if (value < rowMin) rowMin = value
    }
    // A swap reaches back two rows, so stop only when both rows exceed the limit.
    let previousMin = rowMin
    for (let j = 0; j < width; j++)
      if ((previous[j] as number) < previousMin) previousMin = previous[j] as number
    if (rowMin > limit && previousMin > limit) return limit + 1
    const spare = beforePrevious
    beforePrevious = previous
    previous = current
    current = spare
  }
  return Math.min(previous[b.length] as number, limit + 1)
}

/** Variables other programs read that sit within two edits of one of ours. */
const commonVariables = new Set(["SSL_CERT_FILE", "SSL_CERT_DIR"])

/**
 * Finds the known variable closest to `name` within `limit` edits. Ties go first to a name with
 * the same first letter, then to one of the same length, so CPU gets CPUS rather than GPU and
 * NETWORK_MODLE (a swap) gets NETWORK_MODEL rather than NETWORK_MODE.
 */
const nearestKnown = (name: string, limit: number): string | undefined => {
  if (commonVariables.has(name)) return undefined
  let best: { name: string; score: number } | undefined
  for (const known of knownVariables) {
    if (Math.abs(known.length - name.length) > limit) continue
    // Names that differ in the first letter count only at one edit (see below), and one edit
    // that changes the first letter must be at the front, so no full comparison is needed.
    const distance =
      known[0] === name[0]
        ? editDistance(name, known, limit)
        : oneEditAtFront(name, known)
          ? 1
          : limit + 1
    // Two edits that include the first letter are how unrelated names differ
    // (SSL_CERT_FILE and TLS_CERT_FILE), not how people mistype.
    if (distance > limit || (distance === 2 && known[0] !== name[0])) continue
    const score =
      distance * 4 + (known[0] === name[0] ? 0 : 2) + (known.length === name.length ? 0 : 1)
    if (best === undefined || score < best.score) best = { name: known, score }
  }
  return best?.name
}

/** True when one edit at the start turns `a` into `b`: replace, drop, add or swap the first letters. */
const oneEditAtFront = (a: string, b: string): boolean =>
  a.slice(1) === b.slice(1) ||
  a.slice(1) === b ||
  a === b.slice(1) ||
  (a.length > 1 && `${a[1]}${a[0]}${a.slice(2)}` === b)

/**
 * Suggests a known variable for a misspelt one. A numbered name is compared without its number
 * and the number is put back, so NETWORK3_MODLE gets NETWORK3_MODEL.
 */
const suggestionFor = (name: string): string | undefined => {
  const numbered = /^(NETWORK|FILESYSTEM|DISK|DEVICE)(\d+)/.exec(name)
  const base = numbered?.[1] ?? ""
  const candidate = numbered === null ? name : name.replace(numbered[0], base)
  const match = nearestKnown(candidate, candidate.length <= 5 ? 1 : 2)
  if (match === undefined || numbered === null) return match
  const renumbered = match.replace(base, numbered[0])
  // The same name back means only the number is wrong, which the configuration reports.
  if (renumbered === name) return undefined
  return isKnownVariable(renumbered) ? renumbered : match
}

/**
 * Warns about variables that look like misspelt, lower-case or renamed vm-runner variables.
 * Short names get a tighter limit so that common variables such as TERM or USER are not reported.
 */
export const typoWarnings = (env: Readonly<Record<string, string | undefined>>): Array<string> => {
  const warnings: Array<string> = []
  for (const name of Object.keys(env)) {
    if (isKnownVariable(name)) continue
    if (!/^[A-Z][A-Z0-9_]*$/.test(name)) {
      // Environment variable names are case-sensitive, so memory=8192 is not MEMORY.
      const upper = name.toUpperCase()
      if (isKnownVariable(upper)) warnings.push(`${name} is not read; did you mean ${upper}?`)
      continue
    }
    const replacement = renamed[name]
    if (replacement !== undefined) {
      warnings.push(`${name} is no longer read; use ${replacement}`)
      continue
    }
    const match = suggestionFor(name)
    if (match !== undefined) {
      warnings.push(`${name} is not a vm-runner variable; did you mean ${match}?`)
    }
  }
  return warnings
}
