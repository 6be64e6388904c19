import { createPrivateKey, X509Certificate } from "node:crypto"
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { isIP } from "node:net"
import { hostname } from "node:os"
import { join } from "node:path"
import { Data, Effect, Semaphore } from "effect"
import type { Graphics } from "../domain/Config.ts"
import { ExitCode } from "../domain/ExitCode.ts"
import { FileLock } from "../images/FileLock.ts"
import { Exec } from "../process/Exec.ts"

/** A certificate and its private key, both PEM, ready for `Bun.serve({ tls })`. */
export interface ServerCertificate {
  readonly cert: string
  readonly key: string
  /** The file to show users, so that they can trust it (`curl --cacert`, a browser import). */
  readonly certPath: string
  readonly generated: boolean
  readonly notAfter: Date
}

export class CertificateError extends Data.TaggedError("CertificateError")<{
  readonly path: string
  readonly detail: string
}> {
  readonly exitCode = ExitCode.Environment
  override get message(): string {
    return `cannot use the TLS certificate ${this.path}: ${this.detail}`
  }
}

/** Days a generated certificate is valid. */
export const certificateLifetimeDays = 365
/**
 * A generated certificate is replaced at start when fewer days than this remain, so a run of
 * up to a month never serves an expired one.
 */
export const renewalMarginDays = 30

/**
 * Files under the certificates directory: the key and certificate in one file (mode 0600),
 * replaced in one rename, and the certificate alone for clients to trust.
 */
export const certificateFiles = (certsDir: string) => ({
  bundle: join(certsDir, "vm-runner.pem"),
  cert: join(certsDir, "vm-runner.crt"),
  lock: join(certsDir, ".lock")
})

/** The names a generated certificate covers: loopback by name and address, and this host. */
export const certificateNames = (host: string): ReadonlyArray<string> =>
  [...new Set(["localhost", "127.0.0.1", "::1", host.trim()])].filter((name) => name !== "")

/** Renders names as an X.509 subjectAltName extension value for `openssl -addext`. */
export const subjectAltName = (names: ReadonlyArray<string>): string =>
  names.map((name) => (isIP(name) === 0 ? `DNS:${name}` : `IP:${name}`)).join(",")

/** argv of `openssl req` that makes a self-signed P-256 certificate and an unencrypted key. */
export const opensslArgv = (
  keyPath: string,
  certPath: string,
  names: ReadonlyArray<string>
): ReadonlyArray<string> => [
  "openssl",
  "req",
  "-x509",
  "-newkey",
  "ec",
  "-pkeyopt",
  "ec_paramgen_curve:prime256v1",
  "-nodes",
  "-days",
  String(certificateLifetimeDays),
  "-subj",
  "/O=vm-runner/CN=vm-runner self-signed",
  "-addext",
  `subjectAltName=${subjectAltName(names)}`,
  "-addext",
  "extendedKeyUsage=serverAuth",
  "-addext",
  "basicConstraints=critical,CA:FALSE",
  "-keyout",
  keyPath,
  "-out",
  certPath
]

/** Splits the PEM blocks of a bundle into the private key and the certificate. */
export const splitBundle = (pem: string): { key: string; cert: string } | undefined => {
  const blocks = pem.match(/-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----\n?/g) ?? []
  const key = blocks.find((block) => /^-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(block))
  const cert = blocks.find((block) => block.startsWith("-----BEGIN CERTIFICATE-----"))
  return key === undefined || cert === undefined ? undefined : { key, cert }
}

const dayMs = 24 * 60 * 60 * 1000

/**
 * Why a generated certificate must be made again: unreadable, expiring within the renewal
 * margin, or missing a name (the container's hostname changed). Undefined when it is usable.
 */
export const renewalReason = (
  pem: string,
  names: ReadonlyArray<string>,
  now: Date
): string | undefined => {
  const parts = splitBundle(pem)
  if (parts === undefined) return "it does not contain both a key and a certificate"
  let certificate: X509Certificate
  try {
    certificate = new X509Certificate(parts.cert)
  } catch {
    return "it cannot be parsed"
  }
  const daysLeft = (certificate.validToDate.getTime() - now.getTime()) / dayMs
  if (daysLeft < renewalMarginDays) {
    return `it expires on ${certificate.validToDate.toISOString().slice(0, 10)}`
  }
  const covered = (certificate.subjectAltName ?? "").split(", ")
  const missing = names.filter(
    (name) => !covered.includes(`DNS:${name}`) && !covered.includes(`IP Address:${name}`)
  )
  // X509Certificate prints IPv6 addresses uncompressed, so ::1 is 0:0:0:0:0:0:0:1.
  const stillMissing = missing.filter(
    (name) => !(name === "::1" && covered.includes("IP Address:0:0:0:0:0:0:0:1"))
  )
  if (stillMissing.length > 0) return `it does not cover ${stillMissing.join(", ")}`
  return undefined
}

const readText = (path: string) =>
  Effect.try({
    try: () => readFileSync(path, "utf8"),
    catch: (cause) => new CertificateError({ path, detail: String(cause) })
  })

/** Generates a certificate into the bundle under a temporary name, then renames it. */
const generate = (certsDir: string, names: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const exec = yield* Exec
    const files = certificateFiles(certsDir)
    // A private directory, so the key is never readable by others, whatever openssl's umask.
    const work = mkdtempSync(join(certsDir, ".new-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(work, { recursive: true })))
    const keyPath = join(work, "key.pem")
    const certPath = join(work, "cert.pem")
    yield* exec
      .run(opensslArgv(keyPath, certPath, names), { timeout: "60 seconds" })
      .pipe(
        Effect.mapError(
          (error) => new CertificateError({ path: files.bundle, detail: error.message })
        )
      )
    const key = yield* readText(keyPath)
    const cert = yield* readText(certPath)
    const bundleTemp = join(work, "bundle.pem")
    writeFileSync(bundleTemp, key + cert, { mode: 0o600 })
    writeFileSync(join(work, "cert.crt"), cert, { mode: 0o644 })
    renameSync(bundleTemp, files.bundle)
    renameSync(join(work, "cert.crt"), files.cert)
    return { key, cert }
  }).pipe(Effect.scoped)

/**
 * Serializes the services of this process, so that the second waits quietly for the first's
 * certificate. The file lock then only waits for other processes.
 */
const inProcess = Semaphore.makeUnsafe(1)

/**
 * Returns the self-signed certificate kept under `certsDir`, making it on first use and again
 * when it nears its expiry or lacks one of `names`. `purpose` names the service that asked,
 * for the log. A file lock keeps two containers sharing the directory from making it at once.
 */
export const generatedCertificate = Effect.fn("Certificate.generated")(function* (
  certsDir: string,
  names: ReadonlyArray<string>,
  purpose: string
) {
  const locks = yield* FileLock
  const files = certificateFiles(certsDir)
  mkdirSync(certsDir, { recursive: true })
  const locked = locks.withLock(
    files.lock,
    "creating the TLS certificate",
    Effect.gen(function* () {
      const existing = existsSync(files.bundle) ? yield* readText(files.bundle) : undefined
      const reason =
        existing === undefined ? "none exists yet" : renewalReason(existing, names, new Date())
      let parts = existing === undefined ? undefined : splitBundle(existing)
      if (reason !== undefined || parts === undefined) {
        yield* Effect.logInfo(
          `creating a self-signed TLS certificate for ${purpose} (${reason}); it covers ` +
            `${names.join(", ")} and is valid for ${certificateLifetimeDays} days: ${files.cert}`
        )
        parts = yield* generate(certsDir, names)
      } else {
        // An older run, or a copy from a backup, may have left the key readable by others.
        chmodSync(files.bundle, 0o600)
        if (!existsSync(files.cert)) writeFileSync(files.cert, parts.cert, { mode: 0o644 })
      }
      const notAfter = new X509Certificate(parts.cert).validToDate
      return { ...parts, certPath: files.cert, generated: true, notAfter }
    }).pipe(
      Effect.mapError((error) =>
        error._tag === "CertificateError"
          ? error
          : new CertificateError({ path: files.bundle, detail: error.message })
      )
    )
  )
  return yield* inProcess.withPermits(1)(locked)
})

/** Reads the user's own certificate and key, and checks that they belong together. */
export const userCertificate = Effect.fn("Certificate.user")(function* (
  certPath: string,
  keyPath: string
) {
  const cert = yield* readText(certPath)
  const key = yield* readText(keyPath)
  const parsed = yield* Effect.try({
    try: () => {
      const certificate = new X509Certificate(cert)
      return { certificate, matches: certificate.checkPrivateKey(createPrivateKey(key)) }
    },
    catch: (cause) =>
      new CertificateError({
        path: certPath,
        detail:
          "expected a PEM certificate (TLS_CERT_FILE) and its PEM key (TLS_KEY_FILE): " +
          String(cause)
      })
  })
  if (!parsed.matches) {
    return yield* new CertificateError({
      path: certPath,
      detail: `TLS_KEY_FILE=${keyPath} is not the key of this certificate`
    })
  }
  const notAfter = parsed.certificate.validToDate
  if (notAfter.getTime() < Date.now()) {
    yield* Effect.logWarning(
      `the TLS certificate ${certPath} expired on ${notAfter.toISOString().slice(0, 10)}; ` +
        "clients will reject it until you replace it"
    )
  }
  return { cert, key, certPath, generated: false, notAfter } satisfies ServerCertificate
})

/**
 * The certificate the web console and Redfish serve: the user's own from TLS_CERT_FILE and
 * TLS_KEY_FILE, or the generated one under `certsDir`.
 */
export const serverCertificate = (graphics: Graphics, certsDir: string, purpose: string) =>
  (graphics.tlsCertPath !== undefined && graphics.tlsKeyPath !== undefined
    ? userCertificate(graphics.tlsCertPath, graphics.tlsKeyPath)
    : generatedCertificate(certsDir, certificateNames(hostname()), purpose)
  ).pipe(Effect.provide(FileLock.layer))
