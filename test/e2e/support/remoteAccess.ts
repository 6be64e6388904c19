/**
 * Helpers for the web console and Redfish end-to-end tests: the Debian clients they drive,
 * a small ISO, and polling with a deadline.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { spawn, spawnSync } from "bun"

/**
 * Returns this process's environment without the CA bundle variables, because Python's
 * requests lets REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE override the CA file a client passes.
 */
const clientEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && name !== "REQUESTS_CA_BUNDLE" && name !== "CURL_CA_BUNDLE") {
      env[name] = value
    }
  }
  return env
}

export interface ClientResult {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs a client without blocking this process: a test's own loopback HTTP server (the ISO
 * for virtual media) must keep answering while the client waits for vm-runner.
 */
const runClient = async (
  argv: ReadonlyArray<string>,
  timeoutMs = 300_000
): Promise<ClientResult> => {
  const child = spawn([...argv], { env: clientEnv(), stdout: "pipe", stderr: "pipe" })
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited
  ])
  clearTimeout(timer)
  return { exitCode, stdout, stderr }
}

export interface RedfishTarget {
  readonly port: number
  readonly user: string
  readonly password: string
  readonly caFile: string
  readonly systemId: string
}

/** Runs test/e2e/support/sushy-client.py with Debian's python3-sushy; returns its JSON. */
export const sushy = async (target: RedfishTarget, ...command: ReadonlyArray<string>) => {
  const result = await runClient([
    "/usr/bin/python3",
    join(import.meta.dir, "sushy-client.py"),
    `https://127.0.0.1:${target.port}/redfish/v1`,
    target.user,
    target.password,
    target.caFile,
    `/redfish/v1/Systems/${target.systemId}`,
    ...command
  ])
  if (result.exitCode !== 0) {
    throw new Error(`sushy ${command.join(" ")} failed (${result.exitCode}):\n${result.stderr}`)
  }
  return JSON.parse(result.stdout) as Record<string, unknown>
}

/** Runs Debian's redfishtool against the service over HTTPS. */
export const redfishtool = (target: RedfishTarget, ...args: ReadonlyArray<string>) =>
  runClient([
    "redfishtool",
    "-r",
    `127.0.0.1:${target.port}`,
    "-u",
    target.user,
    "-p",
    target.password,
    "-S",
    "Always",
    ...args
  ])

/** Makes an ISO 9660 image with volume label `label` holding one text file. */
export const makeIso = (dir: string, label: string): string => {
  const content = join(dir, "iso-content")
  mkdirSync(content, { recursive: true })
  writeFileSync(join(content, "hello.txt"), "virtual media from the Redfish test\n")
  const iso = join(dir, "media.iso")
  const result = spawnSync(["genisoimage", "-quiet", "-V", label, "-J", "-r", "-o", iso, content])
  if (result.exitCode !== 0) throw new Error(`genisoimage failed: ${result.stderr.toString()}`)
  return iso
}

export const virsh = (...args: ReadonlyArray<string>) => {
  const result = spawnSync(["virsh", "-q", "-c", "qemu:///system", ...args])
  return { exitCode: result.exitCode, stdout: result.stdout.toString().trim() }
}

/** Polls `check` every `intervalMs` until it returns true; fails with `what` at the deadline. */
export const waitUntil = async (
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 1000
): Promise<void> => {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    if (await check()) return
    await Bun.sleep(intervalMs)
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`)
}

/** True once the guest agent of `domain` answers a ping. */
export const agentAnswers = (domain: string): boolean =>
  virsh("qemu-agent-command", domain, '{"execute":"guest-ping"}', "--timeout", "5").exitCode === 0
