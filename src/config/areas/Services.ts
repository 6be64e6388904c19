import type { Graphics, GraphicsMode, Redfish } from "../../domain/Config.ts"
import type { HostFacts } from "../../host/HostFacts.ts"
import type { EnvReader } from "../Env.ts"

export const defaultRedfishPassword = "password"
/** VNC authentication (RFB "VNC Authentication") uses only the first 8 characters. */
export const vncPasswordLength = 8

/**
 * Returns the part of a password that VNC checks: the longest prefix of whole characters that fits
 * in 8 bytes of UTF-8. libvirt (checked with 9.0) rejects a longer `passwd`.
 */
export const vncPasswordPrefix = (password: string): string => {
  let prefix = ""
  for (const character of password) {
    if (Buffer.byteLength(prefix + character, "utf8") > vncPasswordLength) break
    prefix += character
  }
  return prefix
}

const checkFile = (reader: EnvReader, host: HostFacts, name: string, example: string) => {
  const path = reader.get(name)
  if (path !== undefined && host.pathKind(path) !== "file") {
    reader.problem(name, "no such file; bind-mount it into the container", example)
  }
  return path
}

/** The keymaps QEMU ships in /usr/share/qemu/keymaps (QEMU 7.2 to 10). */
const qemuKeymaps = [
  "ar",
  "bepo",
  "cz",
  "da",
  "de",
  "de-ch",
  "en-gb",
  "en-us",
  "es",
  "et",
  "fi",
  "fo",
  "fr",
  "fr-be",
  "fr-ca",
  "fr-ch",
  "hr",
  "hu",
  "is",
  "it",
  "ja",
  "lt",
  "lv",
  "mk",
  "nl",
  "no",
  "pl",
  "pt",
  "pt-br",
  "ru",
  "sl",
  "sv",
  "th",
  "tr"
]

export const resolveGraphics = (reader: EnvReader, host: HostFacts): Graphics => {
  const mode = reader.choice<GraphicsMode>("GRAPHICS", "none", ["none", "vnc", "novnc"])
  const keymap = reader.get("VNC_KEYMAP")?.toLowerCase()
  if (keymap !== undefined && !qemuKeymaps.includes(keymap)) {
    reader.problem(
      "VNC_KEYMAP",
      `expected one of QEMU's keymaps: ${qemuKeymaps.join(", ")}`,
      "VNC_KEYMAP=de"
    )
  }
  const vncPassword = reader.raw("VNC_PASSWORD")
  if (vncPassword !== undefined && vncPassword.length > vncPasswordLength) {
    reader.warnings.push(
      `VNC_PASSWORD is longer than ${vncPasswordLength} characters; VNC clients check only the ` +
        `first ${vncPasswordLength}, while the web console checks all of it`
    )
  }
  const certificate = checkFile(reader, host, "TLS_CERT_FILE", "TLS_CERT_FILE=/config/tls.crt")
  const key = checkFile(reader, host, "TLS_KEY_FILE", "TLS_KEY_FILE=/config/tls.key")
  if ((certificate === undefined) !== (key === undefined)) {
    const missing = certificate === undefined ? "TLS_CERT_FILE" : "TLS_KEY_FILE"
    reader.problem(
      missing,
      "TLS_CERT_FILE and TLS_KEY_FILE must be set together",
      missing === "TLS_CERT_FILE" ? "TLS_CERT_FILE=/config/tls.crt" : "TLS_KEY_FILE=/config/tls.key"
    )
  }
  return {
    mode,
    vncPort: reader.port("VNC_PORT", 5900),
    novncPort: reader.port("NOVNC_PORT", 6080),
    keymap,
    vncPassword,
    tlsCertPath: certificate,
    tlsKeyPath: key
  }
}

/**
 * Rejects Redfish with the published default password unless the user set it on purpose:
 * anyone who reaches REDFISH_PORT can power the machine off and boot it from any ISO.
 */
const checkRedfishPassword = (reader: EnvReader, password: string | undefined) => {
  if (password === undefined) {
    // Pushed directly: `problem` would call the unset secret "value hidden".
    reader.problems.push({
      variable: "REDFISH_PASSWORD",
      value: undefined,
      expected:
        "expected a password of your own when REDFISH_ENABLE=1, because anyone who reaches " +
        `REDFISH_PORT with the default '${defaultRedfishPassword}' can power the machine off ` +
        `and boot it from any ISO (set REDFISH_PASSWORD=${defaultRedfishPassword} to accept that)`,
      example: "REDFISH_PASSWORD=$(openssl rand -base64 18)"
    })
  } else if (password === defaultRedfishPassword) {
    reader.warnings.push(
      `REDFISH_PASSWORD is the published default '${defaultRedfishPassword}': anyone who ` +
        "reaches REDFISH_PORT can power this machine off and boot it from any ISO"
    )
  }
}

export const resolveRedfish = (reader: EnvReader, vmName: string): Redfish => {
  const password = reader.raw("REDFISH_PASSWORD")
  const username = reader.string("REDFISH_USERNAME", "admin")
  if (username.includes(":")) {
    reader.problem(
      "REDFISH_USERNAME",
      "HTTP basic authentication forbids ':' in user names",
      "REDFISH_USERNAME=admin"
    )
  }
  const systemId = reader.string("REDFISH_SYSTEM_ID", vmName)
  if (!/^[A-Za-z0-9._-]+$/.test(systemId)) {
    reader.problem(
      "REDFISH_SYSTEM_ID",
      "expected letters, digits, '.', '_' and '-' (it appears in URLs)",
      `REDFISH_SYSTEM_ID=${vmName}`
    )
  }
  const enabled = reader.bool("REDFISH_ENABLE", false)
  if (enabled) checkRedfishPassword(reader, password)
  for (const name of ["REDFISH_STORAGE_POOL", "REDFISH_STORAGE_PATH"]) {
    if (reader.isSet(name)) {
      reader.warnings.push(
        `${name} is not used: virtual media ISOs are downloaded into the image cache under ` +
          "the data directory and attached from there, without a libvirt storage pool"
      )
    }
  }
  return {
    enabled,
    port: reader.port("REDFISH_PORT", 8443),
    username,
    password: password ?? defaultRedfishPassword,
    passwordIsDefault: password === undefined,
    systemId,
    storagePool: reader.string("REDFISH_STORAGE_POOL", "default"),
    storagePath: reader.string("REDFISH_STORAGE_PATH", "/var/lib/libvirt/images")
  }
}
