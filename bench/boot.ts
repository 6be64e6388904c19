/**
 * Boot and guest-exec timings on the test guest: seconds from process start to the domain
 * started, the kernel, the guest agent and cloud-init done (from the boot report), then the
 * wall time of `guest-exec true` (median of 20), then SIGTERM to exit.
 *
 *   bun run build && bun bench/boot.ts [CPUS]
 *
 * The image is served from a loopback HTTP server through a catalogue entry with its sha256,
 * as in the end-to-end tests; the first run downloads it, so the script boots twice and reports
 * the second, cached start. Needs root and libvirtd.
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { spawn, spawnSync } from "bun"
import { machineLine, median, spread } from "./support.ts"

const cpus = process.argv[2] ?? "2"
const root = resolve(import.meta.dir, "..")
const binary = join(root, "dist/vm-runner")
const image = spawnSync(["bash", join(root, "test/guest/ensure-image.sh")])
  .stdout.toString()
  .trim()
const sha256 = readFileSync(`${image}.sha256`, "utf8").trim()
const work = mkdtempSync("/var/tmp/vm-runner-bench-boot-")
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: () => new Response(Bun.file(image))
})
const catalogue = join(work, "distros.yaml")
writeFileSync(
  catalogue,
  `distributions:\n  bench:\n    name: bench\n    url: http://127.0.0.1:${server.port}/guest.qcow2\n    sha256: ${sha256}\n`
)
const name = `bench-boot-${process.pid}`
const env = {
  ...process.env,
  DISTROS_FILE: catalogue,
  DISTRO: "bench",
  DATA_DIR: join(work, "data"),
  GUEST_NAME: name,
  PERSIST: "0",
  NO_CONSOLE: "1",
  MEMORY: "1024",
  CPUS: cpus,
  GUEST_PASSWORD: "bench-password",
  SSH_PORT: "40222"
}

const boot = async () => {
  const child = spawn([binary], { env, stdin: "ignore", stdout: "ignore", stderr: "pipe" })
  let text = ""
  const decoder = new TextDecoder()
  for await (const chunk of child.stderr as ReadableStream<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true })
    if (/boot timing:/.test(text)) break
  }
  const report = JSON.parse(
    readFileSync(join(work, "data/state/boot-reports", `${name}.json`), "utf8")
  ) as { secondsSinceStart: Record<string, number> }
  return { child, report: report.secondsSinceStart }
}

const stop = async (child: ReturnType<typeof spawn>) => {
  const started = performance.now()
  child.kill("SIGTERM")
  const code = await child.exited
  return { seconds: (performance.now() - started) / 1000, code }
}

console.log(`Machine: ${machineLine()}; guest: ${cpus} vCPU, 1024 MiB, TCG unless KVM works\n`)
try {
  const first = await boot()
  await stop(first.child)
  const second = await boot()
  const times: Array<number> = []
  for (let i = 0; i < 22; i++) {
    const started = performance.now()
    const result = spawnSync([binary, "guest-exec", "--domain", name, "true"])
    if (result.exitCode !== 0) throw new Error(result.stderr.toString())
    if (i >= 2) times.push(performance.now() - started)
  }
  const stopped = await stop(second.child)
  const row = (label: string, report: Record<string, number>) =>
    `| ${label} | ${report.start} | ${report.kernel} | ${report.agent} | ${report.cloudInit} |`
  console.log("| Start | domain started s | kernel s | agent s | cloud-init done s |")
  console.log("|---|---:|---:|---:|---:|")
  console.log(row("first (downloads the image)", first.report))
  console.log(row("second (image cached)", second.report))
  console.log(
    `\n\`guest-exec true\`: median ${median(times).toFixed(0)} ms, range ${spread(times)} ms (20 runs)`
  )
  console.log(`SIGTERM to exit: ${stopped.seconds.toFixed(1)} s, exit code ${stopped.code}`)
} finally {
  server.stop(true)
  spawnSync(["virsh", "-c", "qemu:///system", "destroy", name])
  spawnSync(["virsh", "-c", "qemu:///system", "undefine", name, "--keep-nvram"])
  rmSync(work, { recursive: true, force: true })
}
