import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { X509Certificate } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { BunServices } from "@effect/platform-bun"
import { Effect, Layer } from "effect"
import { FileLock } from "../../../src/images/FileLock.ts"
import { Exec } from "../../../src/process/Exec.ts"
import {
  certificateFiles,
  certificateNames,
  generatedCertificate,
  opensslArgv,
  renewalMarginDays,
  renewalReason,
  serverCertificate,
  splitBundle,
  subjectAltName,
  userCertificate
} from "../../../src/webconsole/Certificate.ts"

const services = Layer.mergeAll(Exec.layer, FileLock.layer).pipe(
  Layer.provideMerge(BunServices.layer)
)
const run = <A, E>(effect: Effect.Effect<A, E, Exec | FileLock>) =>
  Effect.runPromise(effect.pipe(Effect.provide(services)))
const runExit = <A, E>(effect: Effect.Effect<A, E, Exec | FileLock>) =>
  Effect.runPromiseExit(effect.pipe(Effect.provide(services)))

const dayMs = 24 * 60 * 60 * 1000
let workDir = ""

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), "vm-runner-certs-"))
})

afterAll(() => {
  rmSync(workDir, { recursive: true, force: true })
})

describe("names", () => {
  test("cover loopback and the host name", () => {
    expect(certificateNames("vm-host")).toEqual(["localhost", "127.0.0.1", "::1", "vm-host"])
  })

  test("drop an empty or repeated host name", () => {
    expect(certificateNames("")).toEqual(["localhost", "127.0.0.1", "::1"])
    expect(certificateNames("localhost")).toEqual(["localhost", "127.0.0.1", "::1"])
  })

  test("mark addresses as IP entries", () => {
    expect(subjectAltName(["localhost", "127.0.0.1", "::1", "10.0.0.5"])).toBe(
      "DNS:localhost,IP:127.0.0.1,IP:::1,IP:10.0.0.5"
    )
  })

  test("reach openssl as one -addext", () => {
    const argv = opensslArgv("/k", "/c", ["localhost"])
    expect(argv).toContain("subjectAltName=DNS:localhost")
    expect(argv.slice(-4)).toEqual(["-keyout", "/k", "-out", "/c"])
  })
})

describe("generatedCertificate", () => {
  test("creates a key readable by the owner only", async () => {
    const dir = join(workDir, "first")
    const certificate = await run(generatedCertificate(dir, ["localhost", "127.0.0.1"], "a test"))
    const files = certificateFiles(dir)
    expect(statSync(files.bundle).mode & 0o777).toBe(0o600)
    expect(readFileSync(files.cert, "utf8")).toBe(certificate.cert)
    expect(certificate.certPath).toBe(files.cert)
    expect(certificate.generated).toBe(true)
  })

  test("covers the names and lasts a year", async () => {
    const dir = join(workDir, "names")
    const certificate = await run(
      generatedCertificate(dir, ["localhost", "127.0.0.1", "::1", "vm-host"], "a test")
    )
    const parsed = new X509Certificate(certificate.cert)
    expect(parsed.subjectAltName).toBe(
      "DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:vm-host"
    )
    const days = (parsed.validToDate.getTime() - Date.now()) / dayMs
    expect(days).toBeGreaterThan(364)
    expect(days).toBeLessThan(366)
  })

  test("reuses a valid certificate", async () => {
    const dir = join(workDir, "reuse")
    const first = await run(generatedCertificate(dir, ["localhost"], "a test"))
    const second = await run(generatedCertificate(dir, ["localhost"], "a test"))
    expect(second.cert).toBe(first.cert)
  })

  test("replaces one without the host name", async () => {
    const dir = join(workDir, "renamed")
    const first = await run(generatedCertificate(dir, ["localhost"], "a test"))
    const second = await run(generatedCertificate(dir, ["localhost", "new-host"], "a test"))
    expect(second.cert).not.toBe(first.cert)
    expect(new X509Certificate(second.cert).subjectAltName).toContain("DNS:new-host")
  })

  test("restores the key's mode", async () => {
    const dir = join(workDir, "mode")
    await run(generatedCertificate(dir, ["localhost"], "a test"))
    const files = certificateFiles(dir)
    Bun.spawnSync(["chmod", "0644", files.bundle])
    await run(generatedCertificate(dir, ["localhost"], "a test"))
    expect(statSync(files.bundle).mode & 0o777).toBe(0o600)
  })

  test("two services at once make one certificate", async () => {
    const dir = join(workDir, "concurrent")
    const [a, b] = await run(
      Effect.all(
        [
          generatedCertificate(dir, ["localhost"], "the web console"),
          generatedCertificate(dir, ["localhost"], "Redfish")
        ],
        { concurrency: "unbounded" }
      )
    )
    expect(a.cert).toBe(b.cert)
  })
})

describe("renewalReason", () => {
  const dir = () => join(workDir, "renewal")
  const bundle = async () => {
    await run(generatedCertificate(dir(), ["localhost", "127.0.0.1"], "a test"))
    return readFileSync(certificateFiles(dir()).bundle, "utf8")
  }

  test("none for a fresh certificate", async () => {
    expect(renewalReason(await bundle(), ["localhost", "127.0.0.1"], new Date())).toBeUndefined()
  })

  test("expiry within the margin", async () => {
    const later = new Date(Date.now() + (365 - renewalMarginDays + 1) * dayMs)
    expect(renewalReason(await bundle(), ["localhost"], later)).toStartWith("it expires on ")
  })

  test("a missing name", async () => {
    expect(renewalReason(await bundle(), ["localhost", "other"], new Date())).toBe(
      "it does not cover other"
    )
  })

  test("a damaged file", () => {
    expect(renewalReason("garbage", ["localhost"], new Date())).toBe(
      "it does not contain both a key and a certificate"
    )
  })
})

describe("userCertificate", () => {
  test("accepts a matching pair", async () => {
    const dir = join(workDir, "user")
    const generated = await run(generatedCertificate(dir, ["localhost"], "a test"))
    const parts = splitBundle(generated.cert + generated.key)
    writeFileSync(join(dir, "user.crt"), parts?.cert ?? "")
    writeFileSync(join(dir, "user.key"), parts?.key ?? "")
    const certificate = await run(userCertificate(join(dir, "user.crt"), join(dir, "user.key")))
    expect(certificate.generated).toBe(false)
    expect(certificate.certPath).toBe(join(dir, "user.crt"))
  })

  test("rejects a key of another certificate", async () => {
    const one = await run(generatedCertificate(join(workDir, "one"), ["localhost"], "a test"))
    const two = await run(generatedCertificate(join(workDir, "two"), ["localhost"], "a test"))
    writeFileSync(join(workDir, "mixed.crt"), one.cert)
    writeFileSync(join(workDir, "mixed.key"), two.key)
    const exit = await runExit(
      userCertificate(join(workDir, "mixed.crt"), join(workDir, "mixed.key"))
    )
    expect(JSON.stringify(exit)).toContain("is not the key of this certificate")
  })

  test("serverCertificate prefers the user's files", async () => {
    const dir = join(workDir, "user")
    const certificate = await Effect.runPromise(
      serverCertificate(
        {
          mode: "novnc",
          vncPort: 5900,
          novncPort: 6080,
          keymap: undefined,
          vncPassword: "x",
          tlsCertPath: join(dir, "user.crt"),
          tlsKeyPath: join(dir, "user.key")
        },
        join(workDir, "unused"),
        "a test"
      ).pipe(Effect.provide(Layer.mergeAll(Exec.layer).pipe(Layer.provideMerge(BunServices.layer))))
    )
    expect(certificate.generated).toBe(false)
  })
})
