/**
 * Docker helpers for the container tests: a Docker engine (started here when none responds),
 * the image built the way users build it, and containers driven through the docker CLI.
 */
import { existsSync, mkdirSync, openSync } from "node:fs"
import { join } from "node:path"
import { spawn, spawnSync } from "bun"
import { projectRoot } from "../support/harness.ts"

/** The docker CLI for running containers. */
export const docker = process.env.VM_RUNNER_DOCKER ?? "docker"

export interface CommandOutcome {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs a command to completion and collects its output; never throws on a non-zero exit. */
export const runCommand = (argv: ReadonlyArray<string>, timeoutMs = 600_000): CommandOutcome => {
  const result = spawnSync([...argv], { stdout: "pipe", stderr: "pipe", timeout: timeoutMs })
  return {
    exitCode: result.exitCode ?? -1,
    stdout: result.stdout.toString(),
    stderr: result.stderr.toString()
  }
}

export const dockerRun = (args: ReadonlyArray<string>, timeoutMs?: number): CommandOutcome =>
  runCommand([docker, ...args], timeoutMs)

const engineAnswers = () => dockerRun(["info", "--format", "{{.ServerVersion}}"], 20_000)

/** How long a freshly started dockerd gets to respond: it took about 5 s here. */
const dockerdStartTimeoutMs = 60_000

/**
 * Makes sure a Docker engine responds. When none does and Debian's dockerd is installed, starts
 * one in the background with its output in `logDir`, and returns `stop`, which ends exactly that
 * process. `available` is false when no engine runs and none could be started.
 */
export const ensureDockerEngine = async (
  logDir: string
): Promise<{ readonly available: boolean; readonly stop?: () => Promise<void> }> => {
  if (engineAnswers().exitCode === 0) return { available: true }
  if (!existsSync("/usr/sbin/dockerd") || process.getuid?.() !== 0) return { available: false }

  mkdirSync(logDir, { recursive: true })
  const log = openSync(join(logDir, "dockerd.log"), "a")
  const dockerd = spawn(["/usr/sbin/dockerd"], { stdout: log, stderr: log, stdin: "ignore" })
  const deadline = performance.now() + dockerdStartTimeoutMs
  while (performance.now() < deadline && dockerd.exitCode === null) {
    if (engineAnswers().exitCode === 0) {
      const stop = async () => {
        dockerd.kill("SIGTERM")
        await dockerd.exited
      }
      return { available: true, stop }
    }
    await Bun.sleep(500)
  }
  dockerd.kill("SIGTERM")
  await dockerd.exited
  return { available: false }
}

/**
 * Picks the docker CLI for builds. The Dockerfile needs BuildKit, which Docker 23 and later
 * get from the buildx plugin, while Docker before 23 (Debian 12's docker.io) has it in the CLI.
 * A newer CLI without buildx cannot build, so the older one is used when it is installed.
 */
export const buildDocker = (): string => {
  const fromEnv = process.env.VM_RUNNER_BUILD_DOCKER
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv
  if (runCommand([docker, "buildx", "version"], 20_000).exitCode === 0) return docker
  return existsSync("/usr/bin/docker") ? "/usr/bin/docker" : docker
}

/**
 * Makes the base image when it is missing (no registry is reachable here), then builds the
 * vm-runner image with scripts/build-image.sh, passing the host's CA bundle as the
 * "ca-certificates" build secret so that npm trusts a TLS-intercepting proxy.
 * VM_RUNNER_CONTAINER_IMAGE names an image built earlier and skips both steps.
 */
export const ensureVmRunnerImage = (tag: string): string => {
  const prebuilt = process.env.VM_RUNNER_CONTAINER_IMAGE
  if (prebuilt !== undefined && prebuilt !== "") return prebuilt

  const cli = buildDocker()
  const base = runCommand(["bash", join(projectRoot, "test/e2e/container/make-base-image.sh")])
  if (base.exitCode !== 0) throw new Error(`make-base-image.sh failed:\n${base.stderr}`)

  const caBundle = process.env.VM_RUNNER_BUILD_CA_FILE ?? "/etc/ssl/certs/ca-certificates.crt"
  const build = spawnSync(
    [
      "bash",
      join(projectRoot, "scripts/build-image.sh"),
      "--tag",
      tag,
      ...(existsSync(caBundle) ? ["--ca-file", caBundle] : [])
    ],
    { env: { ...process.env, DOCKER: cli }, stdout: "pipe", stderr: "pipe" }
  )
  const output = build.stdout.toString() + build.stderr.toString()
  if (build.exitCode !== 0)
    throw new Error(`scripts/build-image.sh failed:\n${output.slice(-4000)}`)
  const summary = output.split("\n").find((line) => line.startsWith("build-image: built"))
  process.stderr.write(`[e2e] ${summary ?? "image built"}\n`)
  return tag
}

/** Reads one field of `docker inspect` with a Go template. */
export const inspect = (target: string, template: string): string =>
  dockerRun(["inspect", "--format", template, target]).stdout.trim()

/** How often to read a container's health; Docker itself checks every 10 s (HEALTHCHECK). */
const healthPollMs = 2_000

/**
 * Waits until Docker reports the container healthy. Fails at once when the container exits
 * or turns unhealthy, with its log in the message.
 */
export const waitForHealthy = async (container: string, timeoutMs: number): Promise<void> => {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    const running = inspect(container, "{{.State.Running}}")
    const health = inspect(container, "{{.State.Health.Status}}")
    if (health === "healthy") return
    if (running !== "true" || health === "unhealthy") {
      throw new Error(
        `container ${container} is ${health}, running=${running}:\n${logs(container)}`
      )
    }
    await Bun.sleep(healthPollMs)
  }
  throw new Error(`container ${container} not healthy after ${timeoutMs} ms:\n${logs(container)}`)
}

/** Returns the container's output, both streams, because vm-runner logs to stderr. */
export const logs = (container: string): string => {
  const result = dockerRun(["logs", container])
  return result.stdout + result.stderr
}

/** Removes containers and volumes a test created, ignoring those already gone. */
export const removeAll = (containers: ReadonlyArray<string>, volumes: ReadonlyArray<string>) => {
  if (containers.length > 0) dockerRun(["rm", "--force", "--volumes", ...containers])
  if (volumes.length > 0) dockerRun(["volume", "rm", "--force", ...volumes])
}
