import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { runFastCommand } from "../../../src/cli/FastCommands.ts"
import { masked } from "../../../src/cli/ShowConfig.ts"
import { isKnownVariable } from "../../../src/config/KnownVariables.ts"
import { ExitCode } from "../../../src/domain/ExitCode.ts"

interface Captured {
  readonly exitCode: number | undefined
  readonly stdout: string
  readonly stderr: string
}

let dataDir: string

beforeAll(() => {
  dataDir = mkdtempSync(join(tmpdir(), "vm-runner-fast-"))
})

afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

/**
 * Runs `args` with only `env` among vm-runner's variables, capturing what it writes to stdout
 * and stderr, and restores the environment and both streams afterwards.
 */
const runCaptured = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Captured => {
  const savedEnv = { ...process.env }
  const out = process.stdout.write
  const err = process.stderr.write
  const stdout: Array<string> = []
  const stderr: Array<string> = []
  for (const name of Object.keys(process.env)) {
    if (isKnownVariable(name) || name === "HOSTNAME" || name.startsWith("VM_")) {
      delete process.env[name]
    }
  }
  Object.assign(process.env, env)
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout.push(chunk.toString())
    return true
  }) as typeof process.stdout.write
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr.push(chunk.toString())
    return true
  }) as typeof process.stderr.write
  try {
    const exitCode = runFastCommand(args)
    return { exitCode, stdout: stdout.join(""), stderr: stderr.join("") }
  } finally {
    process.stdout.write = out
    process.stderr.write = err
    for (const name of Object.keys(process.env)) {
      if (!(name in savedEnv)) delete process.env[name]
    }
    Object.assign(process.env, savedEnv)
  }
}

const guestPassword = "hunter2-not-shown"
const showEnv = () => ({
  DATA_DIR: dataDir,
  GUEST_NAME: "fastvm",
  DISTRO: "debian-12",
  GUEST_PASSWORD: guestPassword,
  MEMORY: "1024",
  CPUS: "1"
})

/** The parts of `--show-config` output these tests read. */
interface ConfigView {
  readonly name: string
  readonly distro: { readonly key: string }
  readonly memory_mib: number
  readonly cloud_init: { readonly password: string }
  readonly runtime: { readonly data_dir: string }
}

/** Data rows of a distribution table, as [key, arch] pairs. */
const distroRows = (table: string) =>
  table
    .trimEnd()
    .split("\n")
    .slice(1)
    .map((line) => {
      const columns = line.split(/\s{2,}/)
      return [columns[0], columns[2]] as const
    })

describe("runFastCommand --show-config", () => {
  test("YAML of the resolved configuration", () => {
    const result = runCaptured(["--show-config"], showEnv())
    expect(result.exitCode).toBe(ExitCode.Ok)
    const view = Bun.YAML.parse(result.stdout) as ConfigView
    expect(view.name).toBe("fastvm")
    expect(view.distro.key).toBe("debian-12")
    expect(view.memory_mib).toBe(1024)
    expect(view.runtime.data_dir).toBe(dataDir)
  })

  test("password masked in YAML", () => {
    const result = runCaptured(["--show-config"], showEnv())
    const view = Bun.YAML.parse(result.stdout) as ConfigView
    expect(view.cloud_init.password).toBe(masked)
    expect(result.stdout).not.toContain(guestPassword)
    expect(result.stderr).not.toContain(guestPassword)
  })

  test("JSON with --json", () => {
    const result = runCaptured(["--show-config", "--json"], showEnv())
    expect(result.exitCode).toBe(ExitCode.Ok)
    const view = JSON.parse(result.stdout) as ConfigView
    expect(view.name).toBe("fastvm")
    expect(view.cloud_init.password).toBe(masked)
    expect(result.stdout).not.toContain(guestPassword)
  })

  test("--json before --show-config", () => {
    const result = runCaptured(["--json", "--show-config"], showEnv())
    expect(result.exitCode).toBe(ExitCode.Ok)
    expect(JSON.parse(result.stdout).name).toBe("fastvm")
  })

  test("invalid configuration exits 1", () => {
    const result = runCaptured(["--show-config"], { ...showEnv(), MEMORY: "lots" })
    expect(result.exitCode).toBe(ExitCode.Config)
    expect(result.stdout).toBe("")
    expect(result.stderr).toStartWith("vm-runner: invalid configuration (1 problem):")
    expect(result.stderr).toContain("MEMORY")
  })

  test("unreadable DISTROS_FILE exits 1", () => {
    const missing = join(dataDir, "missing-distros.yaml")
    const result = runCaptured(["--show-config"], { ...showEnv(), DISTROS_FILE: missing })
    expect(result.exitCode).toBe(ExitCode.Config)
    expect(result.stderr).toBe(`vm-runner: cannot read the distribution catalogue ${missing}\n`)
  })
})

describe("runFastCommand --list-distros", () => {
  test("every distribution with a header", () => {
    const result = runCaptured(["--list-distros"])
    expect(result.exitCode).toBe(ExitCode.Ok)
    expect(result.stdout.split("\n")[0]).toMatch(/^DISTRO\s+NAME\s+ARCH\s+USER$/)
    const keys = distroRows(result.stdout).map(([key]) => key)
    expect(keys).toContain("ubuntu-2404")
    expect(keys).toContain("debian-12-arm64")
  })

  test("arm64 lists only aarch64", () => {
    const result = runCaptured(["--list-distros", "arm64"])
    expect(result.exitCode).toBe(ExitCode.Ok)
    const arches = new Set(distroRows(result.stdout).map(([, arch]) => arch))
    expect([...arches]).toEqual(["aarch64"])
  })

  test("list-distros without dashes", () => {
    const result = runCaptured(["list-distros", "x86_64"])
    expect(result.exitCode).toBe(ExitCode.Ok)
    const arches = new Set(distroRows(result.stdout).map(([, arch]) => arch))
    expect([...arches]).toEqual(["x86_64"])
  })

  test("unknown architecture exits 2", () => {
    const result = runCaptured(["--list-distros", "sparc"])
    expect(result.exitCode).toBe(ExitCode.Usage)
    expect(result.stdout).toBe("")
    expect(result.stderr).toBe(
      'vm-runner: unknown architecture "sparc"; expected x86_64, amd64, aarch64 or arm64\n'
    )
  })
})

describe("runFastCommand other arguments", () => {
  const unhandled: ReadonlyArray<ReadonlyArray<string>> = [
    [],
    ["--dry-run"],
    ["--show-xml"],
    ["--json"],
    ["--show-config", "--dry-run"],
    ["--show-config", "--json", "--json"],
    ["--list-distros", "arm64", "extra"],
    ["--list-distros", "--json"],
    ["guest-exec", "uname"],
    ["health"]
  ]

  for (const args of unhandled) {
    test(`[${args.join(" ")}] is not handled`, () => {
      const result = runCaptured(args, showEnv())
      expect(result.exitCode).toBeUndefined()
      expect(result.stdout).toBe("")
      expect(result.stderr).toBe("")
    })
  }
})
