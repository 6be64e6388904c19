import { isAbsolute, resolve } from "node:path"
import type { BootDevice, BootFrom, CloudInit, Distro, SourceHint } from "../../domain/Config.ts"
import { describePathKind, type HostFacts } from "../../host/HostFacts.ts"
import type { EnvReader } from "../Env.ts"

export const defaultGuestPassword = "password"

const diskExtensions = ["qcow2", "img", "raw", "vmdk", "vdi", "vhd", "vhdx"]
const archiveExtensions = ["gz", "xz", "bz2", "zst", "zip", "7z", "tar", "tgz", "txz", "ova"]

/** Guesses a source's kind from its file name; the image layer checks the content later. */
export const hintFromName = (name: string): SourceHint => {
  const path = name.replace(/[?#].*$/, "").toLowerCase()
  const extension = path.slice(path.lastIndexOf(".") + 1)
  if (extension === "iso") return "iso"
  if (diskExtensions.includes(extension)) return "disk"
  if (archiveExtensions.includes(extension)) return "archive"
  return "unknown"
}

export const resolveBootFrom = (reader: EnvReader, host: HostFacts): BootFrom => {
  const raw = reader.get("BOOT_FROM")
  if (raw === undefined) return { _tag: "Catalogue" }
  if (raw.toLowerCase() === "blank") return { _tag: "Blank" }
  if (/^https?:\/\//i.test(raw)) {
    if (!URL.canParse(raw)) {
      reader.problem(
        "BOOT_FROM",
        "expected a valid http:// or https:// URL",
        "BOOT_FROM=https://example.com/install.iso"
      )
      return { _tag: "Url", url: raw, hint: "unknown" }
    }
    return { _tag: "Url", url: raw, hint: hintFromName(new URL(raw).pathname) }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    reader.problem(
      "BOOT_FROM",
      "expected blank, an http:// or https:// URL, or a file path",
      "BOOT_FROM=/images/install.iso"
    )
    return { _tag: "Catalogue" }
  }
  const path = isAbsolute(raw) ? raw : resolve(raw)
  const kind = host.pathKind(path)
  if (kind !== "file" && kind !== "block") {
    const found = kind === "missing" ? "no such file" : `it is ${describePathKind(kind)}`
    reader.problem(
      "BOOT_FROM",
      `expected an image or ISO file, but ${found}; in a container, bind-mount it ` +
        "(-v /host/path/disk.iso:/images/disk.iso:ro)",
      "BOOT_FROM=/images/disk.iso"
    )
  } else if (!host.isReadable(path)) {
    reader.problem(
      "BOOT_FROM",
      "the file is not readable by this user",
      "BOOT_FROM=/images/disk.iso"
    )
  }
  return { _tag: "Path", path, hint: hintFromName(path) }
}

const bootDevices = ["hd", "cdrom", "network"] as const

export const resolveBootOrder = (reader: EnvReader): Array<BootDevice> => {
  const raw = reader.get("BOOT_ORDER")
  if (raw === undefined) return ["hd"]
  const order: Array<BootDevice> = []
  for (const item of raw.split(",").map((part) => part.trim().toLowerCase())) {
    if (item === "") continue
    const device = bootDevices.find((candidate) => candidate === item)
    if (device === undefined || order.includes(device)) {
      const reason =
        device === undefined ? `unknown device ${JSON.stringify(item)}` : `${item} twice`
      reader.problem(
        "BOOT_ORDER",
        `${reason}; expected a comma-separated list of hd, cdrom and network, each once`,
        "BOOT_ORDER=cdrom,hd"
      )
      return ["hd"]
    }
    order.push(device)
  }
  return order.length === 0 ? ["hd"] : order
}

/** First-line markers cloud-init recognises in user-data; anything else it ignores. */
const userDataHeaders = [
  "#cloud-config",
  "#!",
  "#cloud-boothook",
  "#include",
  "#part-handler",
  "## template: jinja",
  "content-type:"
]

const checkUserData = (reader: EnvReader, host: HostFacts, path: string): void => {
  const name = "CLOUD_INIT_USER_DATA"
  const example = `${name}=/config/user-data.yaml`
  const kind = host.pathKind(path)
  if (kind !== "file") {
    const found = kind === "missing" ? "no such file" : `it is ${describePathKind(kind)}`
    reader.problem(
      name,
      `expected a cloud-init user-data file, but ${found}; bind-mount it`,
      example
    )
    return
  }
  const text = host.readText(path)
  if (text === undefined) {
    reader.problem(name, "the file is not readable by this user", example)
    return
  }
  const firstLine =
    text
      .split("\n")
      .find((line) => line.trim() !== "")
      ?.trim() ?? ""
  if (!userDataHeaders.some((header) => firstLine.toLowerCase().startsWith(header))) {
    reader.problem(
      name,
      "cloud-init ignores a file that does not start with #cloud-config, #!, #include, " +
        "#cloud-boothook, #part-handler or a MIME header",
      example
    )
    return
  }
  if (!firstLine.toLowerCase().startsWith("#cloud-config")) return
  try {
    const document: unknown = Bun.YAML.parse(text)
    if (document !== null && (typeof document !== "object" || Array.isArray(document))) {
      reader.problem(name, "a #cloud-config file must be a YAML mapping of keys", example)
    }
  } catch (error) {
    const detail = (error as Error).message.split("\n")[0]?.replace(/:$/, "")
    reader.problem(name, `the #cloud-config file is not valid YAML: ${detail}`, example)
  }
}

const sshKeyTypes =
  /^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp\d+|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) \S+/

export const resolveCloudInit = (
  reader: EnvReader,
  host: HostFacts,
  distro: Distro | undefined,
  isoDefaults: boolean
): CloudInit => {
  const enabled = reader.bool("CLOUD_INIT", !isoDefaults)
  if (isoDefaults && !reader.isSet("CLOUD_INIT")) {
    reader.notes.push(
      "cloud-init is off because BOOT_FROM is an ISO; set CLOUD_INIT=1 to add a seed"
    )
  }
  const userDataPath = reader.get("CLOUD_INIT_USER_DATA")
  if (userDataPath !== undefined) checkUserData(reader, host, userDataPath)
  if (userDataPath !== undefined && !enabled) {
    reader.warnings.push(
      "CLOUD_INIT_USER_DATA is ignored because cloud-init is off (no seed is attached); set " +
        "CLOUD_INIT=1 to use it"
    )
  }

  const password = reader.raw("GUEST_PASSWORD")
  if (password?.includes("\n")) {
    reader.problem(
      "GUEST_PASSWORD",
      "a password cannot contain a line break",
      "GUEST_PASSWORD=s3cret"
    )
  }
  const sshPublicKey = reader.get("SSH_PUBKEY")
  const badKey = sshPublicKey
    ?.split("\n")
    .map((line) => line.trim())
    .find((line) => line !== "" && !sshKeyTypes.test(line))
  if (badKey !== undefined) {
    reader.problem(
      "SSH_PUBKEY",
      "expected one OpenSSH public key per line, as in ~/.ssh/id_ed25519.pub",
      'SSH_PUBKEY="$(cat ~/.ssh/id_ed25519.pub)"'
    )
  }
  return {
    enabled,
    userDataPath,
    user: distro?.user ?? "user",
    password: password ?? defaultGuestPassword,
    passwordIsDefault: password === undefined,
    sshPublicKey
  }
}
