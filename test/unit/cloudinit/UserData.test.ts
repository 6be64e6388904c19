import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parse } from "yaml"
import { renderSeedFiles } from "../../../src/cloudinit/Seed.ts"
import { sha512Crypt } from "../../../src/cloudinit/Sha512Crypt.ts"
import {
  buildCloudConfig,
  buildMetaData,
  buildNetworkConfig,
  builtInMergeType,
  type CloudConfigUser,
  renderCloudConfig,
  renderMultipart,
  renderYaml
} from "../../../src/cloudinit/UserData.ts"
import { type ConfigOverrides, makeConfig, makeNic, makeShare } from "../libvirt/fixtures.ts"

const goldenDir = join(import.meta.dir, "golden")
/** Set UPDATE_GOLDEN=1 to rewrite the golden files after an intended change of the output. */
const updateGolden = process.env.UPDATE_GOLDEN === "1"

const expectGolden = (name: string, text: string) => {
  const path = join(goldenDir, name)
  if (updateGolden) writeFileSync(path, text)
  if (!existsSync(path)) {
    throw new Error(`missing golden file ${path}; run with UPDATE_GOLDEN=1 to create it`)
  }
  expect(text).toBe(readFileSync(path, "utf8"))
}

/** A fixed salt, so the password hash and with it the golden files stay the same. */
const salt = "Zz09./AbCdEfGhIj"
const instanceId = "6b1c6d4e-2f0a-4c1e-9b7a-3d5e8f9a0b1c"
const ed25519Key =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEc2b3Rlc3RrZXlvbmUAAAAAAAAAAAAAAAAAAAAA one@test"
const rsaKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCtestkeytwo two@test"

const withKey = (cloudInit: ConfigOverrides["cloudInit"] = {}) =>
  makeConfig({ cloudInit: { sshPublicKey: ed25519Key, ...cloudInit } })

const twoShares = [
  makeShare({ source: "/srv/data", tag: "data" }),
  makeShare({ index: 2, source: "/srv/logs", tag: "logs", driver: "9p", readonly: true })
]

/**
 * Lists the leaf parts of a MIME document as Python's email package reads it, which is the
 * parser cloud-init uses: content type, Merge-Type header and payload.
 */
const mimePartsScript = `
import email, json, sys
message = email.message_from_string(sys.stdin.read())
parts = [
    [part.get_content_type(), part.get("Merge-Type"), part.get_payload(decode=True).decode()]
    for part in message.walk()
    if part.get_content_maintype() != "multipart"
]
print(json.dumps(parts))
`
const hasPython = Bun.which("python3") !== null

const mimeParts = (text: string): Array<[type: string, mergeType: string | null, body: string]> => {
  const result = Bun.spawnSync(["python3", "-c", mimePartsScript], { stdin: Buffer.from(text) })
  if (result.exitCode !== 0) throw new Error(`python3 failed: ${result.stderr.toString()}`)
  return JSON.parse(result.stdout.toString())
}

const firstUser = (config = makeConfig()): CloudConfigUser => {
  const user = buildCloudConfig(config, salt).users[0]
  if (user === undefined || user === "default") throw new Error("no login user")
  return user
}

describe("buildCloudConfig golden files", () => {
  test("default configuration", () => {
    expectGolden(
      "cloud-config-default.yaml",
      renderCloudConfig(buildCloudConfig(makeConfig(), salt))
    )
  })

  test("keys, password and shares", () => {
    const config = makeConfig({
      cloudInit: {
        password: "s3cret pässword",
        passwordIsDefault: false,
        sshPublicKey: `${ed25519Key}\n\n  ${rsaKey}  \n`
      },
      filesystems: twoShares
    })
    expectGolden("cloud-config-keys-shares.yaml", renderCloudConfig(buildCloudConfig(config, salt)))
  })
})

describe("buildCloudConfig", () => {
  test("document starts with the cloud-config header", () => {
    const text = renderCloudConfig(buildCloudConfig(makeConfig(), salt))
    expect(text.startsWith("#cloud-config\n")).toBe(true)
  })

  test("rendered YAML parses back", () => {
    const cloudConfig = buildCloudConfig(makeConfig({ filesystems: twoShares }), salt)
    expect(parse(renderCloudConfig(cloudConfig))).toEqual(cloudConfig)
  })

  test("password is stored as its SHA-512 crypt hash", () => {
    const user = firstUser(makeConfig({ cloudInit: { password: "hunter2" } }))
    expect(user.passwd).toBe(sha512Crypt("hunter2", salt))
  })

  test("password never appears in clear", () => {
    const config = makeConfig({ cloudInit: { password: "hunter2", passwordIsDefault: false } })
    const text = renderCloudConfig(buildCloudConfig(config, salt))
    expect(text).not.toContain("hunter2")
  })

  test("user named after the catalogue's user", () => {
    const user = firstUser(makeConfig({ cloudInit: { user: "debian" } }))
    expect(user.name).toBe("debian")
    expect(user.lock_passwd).toBe(false)
  })

  test("keys split by line without blanks", () => {
    const user = firstUser(withKey({ sshPublicKey: `${ed25519Key}\n\n  ${rsaKey}  \n` }))
    expect(user.ssh_authorized_keys).toEqual([ed25519Key, rsaKey])
  })

  test("no key list without a key", () => {
    expect(firstUser()).not.toHaveProperty("ssh_authorized_keys")
  })

  test("SSH password login off with default password and a key", () => {
    expect(buildCloudConfig(withKey(), salt).ssh_pwauth).toBe(false)
  })

  test("SSH password login on with default password alone", () => {
    expect(buildCloudConfig(makeConfig(), salt).ssh_pwauth).toBe(true)
  })

  test("SSH password login on with a set password and a key", () => {
    const config = withKey({ password: "hunter2", passwordIsDefault: false })
    expect(buildCloudConfig(config, salt).ssh_pwauth).toBe(true)
  })

  test("runcmd installs the guest agent and sets the shell", () => {
    const runcmd = buildCloudConfig(makeConfig({ cloudInit: { user: "debian" } }), salt).runcmd
    expect(runcmd).toHaveLength(2)
    expect(runcmd[0]?.slice(0, 2)).toEqual(["sh", "-c"])
    expect(runcmd[0]?.[2]).toContain("qemu-guest-agent")
    expect(runcmd[1]?.[2]).toContain("usermod -s /bin/bash debian")
  })
})

describe("buildCloudConfig mounts", () => {
  const mountsOf = (shares: ConfigOverrides["filesystems"]) =>
    buildCloudConfig(makeConfig({ filesystems: shares ?? [] }), salt).mounts

  test("no mounts without shares", () => {
    expect(mountsOf([])).toBeUndefined()
  })

  test("virtiofs share", () => {
    expect(mountsOf([makeShare({ tag: "data" })])).toEqual([
      ["data", "/mnt/data", "virtiofs", "defaults,nofail", "0", "0"]
    ])
  })

  test("9p share", () => {
    expect(mountsOf([makeShare({ tag: "logs", driver: "9p" })])).toEqual([
      ["logs", "/mnt/logs", "9p", "trans=virtio,version=9p2000.L,msize=262144,nofail", "0", "0"]
    ])
  })

  test("read-only virtiofs share", () => {
    const mounts = mountsOf([makeShare({ tag: "data", readonly: true })])
    expect(mounts?.[0]?.[3]).toBe("defaults,nofail,ro")
  })

  test("read-only 9p share", () => {
    const mounts = mountsOf([makeShare({ tag: "logs", driver: "9p", readonly: true })])
    expect(mounts?.[0]?.[3]).toBe("trans=virtio,version=9p2000.L,msize=262144,nofail,ro")
  })

  test("one mount per share in order", () => {
    expect(mountsOf(twoShares)?.map((mount) => mount[1])).toEqual(["/mnt/data", "/mnt/logs"])
  })
})

describe("buildMetaData", () => {
  test("golden file", () => {
    expectGolden("meta-data.yaml", renderYaml(buildMetaData(makeConfig(), instanceId)))
  })

  test("hostname is the VM name", () => {
    expect(buildMetaData(makeConfig(), instanceId)["local-hostname"]).toBe("testvm")
  })
})

describe("buildNetworkConfig", () => {
  const twoNics = makeConfig({
    network: {
      nics: [makeNic({ index: 1 }), makeNic({ index: 2, mode: "bridge", bridge: "br0" })]
    }
  })

  test("golden file for two NICs", () => {
    const network = buildNetworkConfig(twoNics)
    if (network === undefined) throw new Error("expected a network-config for two NICs")
    expectGolden("network-config-two-nics.yaml", renderYaml(network))
  })

  test("one NIC needs none", () => {
    expect(buildNetworkConfig(makeConfig())).toBeUndefined()
  })

  test("NICs matched by MAC address", () => {
    const ethernets = buildNetworkConfig(twoNics)?.ethernets
    expect(ethernets?.nic1?.match.macaddress).toBe("52:54:00:00:00:01")
    expect(ethernets?.nic2?.match.macaddress).toBe("52:54:00:00:00:02")
  })

  test("only the first NIC is required", () => {
    const ethernets = buildNetworkConfig(twoNics)?.ethernets
    expect(ethernets?.nic1?.optional).toBe(false)
    expect(ethernets?.nic2?.optional).toBe(true)
  })
})

describe("renderSeedFiles user-data", () => {
  let directory: string
  const userDataFile = (name: string, text: string) => {
    const path = join(directory, name)
    writeFileSync(path, text)
    return path
  }
  const seedWith = (name: string, text: string) =>
    renderSeedFiles(
      makeConfig({ cloudInit: { userDataPath: userDataFile(name, text) } }),
      instanceId,
      salt
    )

  beforeAll(() => {
    directory = mkdtempSync(join(tmpdir(), "vm-runner-userdata-"))
  })

  afterAll(() => rmSync(directory, { recursive: true, force: true }))

  test("built-in cloud-config alone without a user file", () => {
    const seed = renderSeedFiles(makeConfig(), instanceId, salt)
    expect(seed["user-data"]).toBe(renderCloudConfig(buildCloudConfig(makeConfig(), salt)))
    expect(seed).not.toHaveProperty("network-config")
  })

  test("user cloud-config golden file", () => {
    const seed = seedWith(
      "cloud-config.yaml",
      "#cloud-config\npackages:\n  - htop\nruncmd:\n  - [touch, /tmp/user-ran]\n"
    )
    expectGolden("user-data-cloud-config.mime", seed["user-data"])
  })

  test("user shell script golden file", () => {
    const seed = seedWith("script.sh", "#!/bin/sh\necho hello > /tmp/hello")
    expectGolden("user-data-shell-script.mime", seed["user-data"])
  })

  test("user MIME document golden file", () => {
    const mime = [
      'Content-Type: multipart/mixed; boundary="user-boundary"',
      "MIME-Version: 1.0",
      "",
      "--user-boundary",
      'Content-Type: text/x-shellscript; charset="us-ascii"',
      "",
      "#!/bin/sh",
      "echo from-mime > /tmp/from-mime",
      "--user-boundary--",
      ""
    ].join("\n")
    const seed = seedWith("user.mime", mime)
    expectGolden("user-data-mime.mime", seed["user-data"])
  })

  test("boundary names the instance", () => {
    const seed = seedWith("script.sh", "#!/bin/sh\ntrue\n")
    expect(seed["user-data"]).toStartWith(
      `Content-Type: multipart/mixed; boundary="vm-runner-${instanceId}"\n`
    )
  })
})

describe("renderMultipart read by Python's email package", () => {
  const builtIn = renderCloudConfig(buildCloudConfig(makeConfig(), salt))
  const partsOf = (userData: string) => mimeParts(renderMultipart(builtIn, userData, "b"))

  test.skipIf(!hasPython)("user cloud-config and built-in part", () => {
    const parts = partsOf("#cloud-config\npackages: [htop]\n")
    expect(parts).toEqual([
      ["text/cloud-config", null, "#cloud-config\npackages: [htop]\n"],
      ["text/cloud-config", builtInMergeType, builtIn]
    ])
  })

  test.skipIf(!hasPython)("user shell script keeps its bytes", () => {
    const script = "#!/bin/sh\nprintf '%s\\n' \"ünïcødé\" > /tmp/out\n"
    expect(partsOf(script)[0]).toEqual(["text/x-shellscript", null, script])
  })

  test.skipIf(!hasPython)("non-ASCII built-in part keeps its text", () => {
    const config = withKey({ sshPublicKey: `${ed25519Key} jürgen@laptöp 虚拟机` })
    const ownBuiltIn = renderCloudConfig(buildCloudConfig(config, salt))
    const parts = mimeParts(renderMultipart(ownBuiltIn, "#!/bin/sh\ntrue\n", "b"))
    expect(parts[1]?.[2]).toBe(ownBuiltIn)
  })

  test.skipIf(!hasPython)("user MIME document nests its parts", () => {
    const mime = [
      'Content-Type: multipart/mixed; boundary="u"',
      "MIME-Version: 1.0",
      "",
      "--u",
      "Content-Type: text/x-shellscript",
      "",
      "#!/bin/sh",
      "--u",
      "Content-Type: text/cloud-config",
      "",
      "#cloud-config",
      "--u--",
      ""
    ].join("\n")
    expect(partsOf(mime).map(([type]) => type)).toEqual([
      "text/x-shellscript",
      "text/cloud-config",
      "text/cloud-config"
    ])
  })

  test.skipIf(!hasPython)("MIME-Version as first header is MIME", () => {
    const mime = [
      "MIME-Version: 1.0",
      'Content-Type: multipart/mixed; boundary="u"',
      "",
      "--u",
      "Content-Type: text/x-shellscript",
      "",
      "#!/bin/sh",
      "--u--",
      ""
    ].join("\n")
    expect(partsOf(mime)).toEqual([
      ["text/x-shellscript", null, "#!/bin/sh"],
      ["text/cloud-config", builtInMergeType, builtIn]
    ])
  })
})

describe("renderMultipart", () => {
  const builtIn = "#cloud-config\nssh_pwauth: true\n"
  const partTypeOf = (userData: string) =>
    /--b\nContent-Type: ([^;\n]+)/.exec(renderMultipart(builtIn, userData, "b"))?.[1]

  for (const [first, type] of [
    ["#cloud-config", "text/cloud-config"],
    ["#!/bin/bash", "text/x-shellscript"],
    ["#include", "text/x-include-url"],
    ["#cloud-boothook", "text/cloud-boothook"],
    ["#part-handler", "text/part-handler"],
    ["## template: jinja", "text/jinja2"]
  ] as const) {
    test(`${first} becomes ${type}`, () => {
      expect(partTypeOf(`${first}\nbody\n`)).toBe(type)
    })
  }

  test("built-in part carries the merge type", () => {
    const text = renderMultipart(builtIn, "#!/bin/sh\ntrue\n", "b")
    expect(text).toContain(`Merge-Type: ${builtInMergeType}\n`)
  })

  test("user part comes before the built-in part", () => {
    const text = renderMultipart(builtIn, "#!/bin/sh\ntrue\n", "b")
    expect(text.indexOf("#!/bin/sh")).toBeLessThan(text.indexOf(builtIn))
  })

  test("ASCII parts have no transfer encoding", () => {
    const text = renderMultipart(builtIn, "#!/bin/sh\ntrue\n", "b")
    expect(text).not.toContain("Content-Transfer-Encoding")
  })

  test("non-ASCII part travels as base64", () => {
    const script = `#!/bin/sh\necho '${"ünïcødé ".repeat(20)}'\n`
    const text = renderMultipart(builtIn, script, "b")
    const part = text.split("--b\n")[1] ?? ""
    const [headers = "", body = ""] = part.split("\n\n")
    expect(headers).toContain("Content-Transfer-Encoding: base64")
    expect(body.split("\n").every((line) => line.length <= 76)).toBe(true)
    expect(Buffer.from(body, "base64").toString("utf8")).toBe(script)
  })

  test("user data without a final newline gets one", () => {
    const text = renderMultipart(builtIn, "#!/bin/sh\ntrue", "b")
    expect(text).toContain("#!/bin/sh\ntrue\n\n--b\n")
  })

  test("document ends with the closing boundary", () => {
    expect(renderMultipart(builtIn, "#!/bin/sh\ntrue\n", "b")).toEndWith("\n--b--\n")
  })
})
