/**
 * Redfish end to end: the compiled binary boots the test guest with REDFISH_ENABLE=1, and
 * Debian's Redfish clients (python3-sushy and redfishtool) read it, power it off and on, set a
 * one-time boot override and insert and eject an ISO served from loopback. Every check shares
 * that one launcher run; the guest boots three times within it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { spawnSync } from "bun"
import { paths } from "../../src/redfish/Resources.ts"
import { shapeProblems } from "../unit/redfish/shape.ts"
import {
  binary,
  freePort,
  guestExec,
  guestImage,
  makeWorkDir,
  removeDir,
  reportTime,
  serveFile,
  stopIfRunning,
  VmRun,
  writeTestCatalogue
} from "./support/harness.ts"
import {
  agentAnswers,
  makeIso,
  type RedfishTarget,
  redfishtool,
  sushy,
  virsh,
  waitUntil
} from "./support/remoteAccess.ts"

const bootTimeout = 15 * 60_000
const password = "Redfish-e2e-Secret-7"
const isoLabel = "VMRTEST"
let workDir: string
let env: Record<string, string>
let run: VmRun
let name: string
let target: RedfishTarget
let isoServer: ReturnType<typeof serveFile>

const redfishGet = async (path: string) => {
  const response = await fetch(`https://127.0.0.1:${target.port}${path}`, {
    headers: { authorization: `Basic ${btoa(`${target.user}:${password}`)}` },
    tls: { ca: readFileSync(target.caFile, "utf8") }
  })
  return { response, body: (await response.json()) as Record<string, unknown> }
}

const powerState = async () => (await redfishGet(paths.system(target.systemId))).body.PowerState

/** The `<boot order>` of the virtual media drive `sdb` in a domain XML, if it has one. */
const mediaBootOrder = (xml: string) => {
  const drive = xml.split("</disk>").find((disk) => disk.includes("<target dev='sdb'"))
  return drive === undefined ? undefined : /<boot order='(\d+)'\/>/.exec(drive)?.[1]
}

beforeAll(async () => {
  const started = performance.now()
  workDir = makeWorkDir("redfish")
  isoServer = serveFile(makeIso(workDir, isoLabel))
  name = `rf-${process.pid}`
  const data = join(workDir, "data")
  target = {
    port: await freePort(),
    user: "operator",
    password,
    caFile: join(data, "state/certs/vm-runner.crt"),
    systemId: "rf-system-1"
  }
  env = {
    // A catalogue of its own, so that the run depends on no built-in entry.
    DISTROS_FILE: writeTestCatalogue(workDir, "http://127.0.0.1:9/unused.qcow2", "f".repeat(64)),
    DISTRO: "test-debian-12",
    BOOT_FROM: guestImage(),
    DATA_DIR: data,
    GUEST_NAME: name,
    PERSIST: "0",
    NO_CONSOLE: "1",
    MEMORY: "1024",
    SSH_PORT: String(await freePort()),
    LOG_VERBOSE: "1",
    REDFISH_ENABLE: "1",
    REDFISH_PORT: String(target.port),
    REDFISH_USERNAME: target.user,
    REDFISH_PASSWORD: password,
    REDFISH_SYSTEM_ID: target.systemId,
    // Under TCG on a busy host the guest can take minutes to power off after SIGTERM.
    SHUTDOWN_TIMEOUT: "300"
  }
  run = new VmRun(env)
  await run.waitForLog(/the guest agent answers/, bootTimeout)
  reportTime("Redfish guest boot to agent", started)
}, bootTimeout + 60_000)

afterAll(async () => {
  await stopIfRunning(run)
  isoServer?.stop()
  if (name !== undefined) {
    virsh("destroy", name)
    virsh("undefine", name, "--nvram")
  }
  if (workDir !== undefined) removeDir(workDir)
})

describe("configuration", () => {
  test("rejects the default password", () => {
    const { REDFISH_PASSWORD: _, ...withoutPassword } = env
    const result = spawnSync([binary, "--show-config"], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...withoutPassword }
    })
    expect(result.exitCode).toBe(1)
    expect(result.stderr.toString()).toContain("REDFISH_PASSWORD is not set")
  })

  test("the default password set on purpose is a warning", () => {
    const result = spawnSync([binary, "--show-config"], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env, REDFISH_PASSWORD: "password" }
    })
    expect(result.exitCode).toBe(0)
    expect(result.stderr.toString()).toContain("REDFISH_PASSWORD is the published default")
  })
})

describe("reading", () => {
  test("sushy reads the system", async () => {
    const system = await sushy(target, "system")
    expect(system.id).toBe(target.systemId)
    expect(system.name).toBe(name)
    expect(system.uuid).toBe(virsh("domuuid", name).stdout)
    expect(system.power_state).toBe("On")
    expect(system.reset_types).toEqual([
      "ForceOff",
      "ForceRestart",
      "GracefulRestart",
      "GracefulShutdown",
      "On",
      "PushPowerButton"
    ])
  })

  test("redfishtool reads the system", async () => {
    const result = await redfishtool(target, "Systems", "-I", target.systemId)
    expect(result.exitCode).toBe(0)
    const system = JSON.parse(result.stdout)
    expect(system.Id).toBe(target.systemId)
    expect(system.PowerState).toBe("On")
  })

  test("redfishtool lists systems over a session", async () => {
    const result = await redfishtool(target, "-A", "Session", "Systems", "list")
    expect(result.exitCode).toBe(0)
    expect(result.stdout).toContain(target.systemId)
  })

  test("every resource has the DMTF shape", async () => {
    const resources = [
      paths.root,
      paths.systems,
      paths.system(target.systemId),
      paths.managers,
      paths.manager,
      paths.virtualMediaCollection,
      paths.virtualMedia,
      paths.chassisCollection,
      paths.chassis(target.systemId),
      paths.sessionService,
      paths.sessions
    ]
    for (const path of resources) {
      const { response, body } = await redfishGet(path)
      expect({ path, status: response.status }).toEqual({ path, status: 200 })
      expect({ path, problems: shapeProblems(body, path) }).toEqual({ path, problems: [] })
      expect(response.headers.get("odata-version")).toBe("4.0")
      expect(response.headers.get("etag")).toMatch(/^"[0-9a-f]+"$/)
    }
  })

  test("the certificate covers localhost and 127.0.0.1", async () => {
    for (const host of ["localhost", "127.0.0.1"]) {
      const response = await fetch(`https://${host}:${target.port}/redfish/v1/`, {
        tls: { ca: readFileSync(target.caFile, "utf8") }
      })
      expect({ host, status: response.status }).toEqual({ host, status: 200 })
    }
  })
})

describe("virtual media", () => {
  test("sushy inserts an ISO the guest can read", async () => {
    const media = await sushy(target, "insert", isoServer.url)
    expect(media).toEqual({ image: isoServer.url, inserted: true })
    const disks = virsh("domblklist", name).stdout
    expect(disks).toMatch(/sdb\s+\S+\/base\/\S+\.iso/)
    // The drive appears to the guest as the second CD-ROM; the medium is there live.
    let label = ""
    await waitUntil(
      "the guest to see the medium",
      async () => {
        const result = await guestExec(["--domain", name, "blkid -o value -s LABEL /dev/sr1"])
        label = result.stdout.toString().trim()
        return label === isoLabel
      },
      60_000,
      2000
    )
    expect(label).toBe(isoLabel)
  }, 120_000)
})

describe("power and boot override", () => {
  test("redfishtool sets a one-time boot override", async () => {
    const result = await redfishtool(
      target,
      "Systems",
      "-I",
      target.systemId,
      "setBootOverride",
      "Once",
      "Cd"
    )
    expect(result.exitCode).toBe(0)
    const system = await sushy(target, "system")
    expect(system.boot_target).toBe("Cd")
    expect(system.boot_enabled).toBe("Once")
  })

  test("GracefulShutdown reaches the guest as ACPI", async () => {
    await sushy(target, "reset", "GracefulShutdown")
    expect(run.stderr).toContain("pressed the ACPI power button")
  })

  test("sushy forces the guest off and the launcher stays", async () => {
    await sushy(target, "reset", "ForceOff")
    await waitUntil("power state Off", async () => (await powerState()) === "Off", 60_000)
    await Bun.sleep(3000)
    expect(run.process.exitCode).toBeNull()
    expect(virsh("domstate", name).stdout).toBe("shut off")
  }, 120_000)

  test(
    "sushy powers on and the override applies once",
    async () => {
      await sushy(target, "reset", "On")
      await waitUntil("power state On", async () => (await powerState()) === "On", 60_000)
      expect(mediaBootOrder(virsh("dumpxml", name).stdout)).toBe("1")
      expect(mediaBootOrder(virsh("dumpxml", name, "--inactive").stdout)).toBeUndefined()
      const system = await sushy(target, "system")
      expect(system.boot_enabled).toBe("Disabled")
      // The ISO has no boot loader, so the firmware goes on to the disk.
      await waitUntil(
        "the guest agent after the power-on",
        () => agentAnswers(name),
        bootTimeout,
        3000
      )
    },
    bootTimeout + 60_000
  )

  test(
    "the guest powers itself off and redfishtool powers it on",
    async () => {
      await guestExec(["--domain", name, "systemctl poweroff"])
      await waitUntil("power state Off", async () => (await powerState()) === "Off", 300_000, 2000)
      expect(run.process.exitCode).toBeNull()
      const result = await redfishtool(target, "Systems", "-I", target.systemId, "reset", "On")
      expect(result.exitCode).toBe(0)
      await waitUntil("power state On", async () => (await powerState()) === "On", 60_000)
      await waitUntil(
        "the guest agent after the power-on",
        () => agentAnswers(name),
        bootTimeout,
        3000
      )
    },
    bootTimeout + 360_000
  )

  test("sushy ejects the ISO", async () => {
    expect(await sushy(target, "eject")).toEqual({ image: null, inserted: false })
    expect(virsh("domblklist", name).stdout).toMatch(/sdb\s+-/)
  })
})

describe("logs and shutdown", () => {
  test("requests at debug, power actions at info", () => {
    expect(run.stderr).toMatch(/DEBUG .*Redfish: GET \/redfish\/v1\/Systems\/rf-system-1 200/)
    expect(run.stderr).toMatch(
      /INFO .*Redfish: ComputerSystem\.Reset ForceOff requested by operator/
    )
    expect(run.stderr).toMatch(/INFO .*powered the guest on \(boot override Once Cd\)/)
  })

  test("never logs the password", () => {
    expect(run.stderr).not.toContain(password)
    expect(run.stdout).not.toContain(password)
    expect(run.stderr).not.toContain(btoa(`${target.user}:${password}`))
  })

  test("SIGTERM ends a BMC whose guest is off", async () => {
    // The guest's own shutdown on SIGTERM is the launcher's general path, tested elsewhere;
    // here the launcher waits as a BMC with the guest off, a state only Redfish creates.
    await sushy(target, "reset", "ForceOff")
    await waitUntil("power state Off", async () => (await powerState()) === "Off", 60_000)
    const code = await run.stop("SIGTERM", 400_000)
    expect(code).toBe(0)
    expect(virsh("domstate", name).exitCode).not.toBe(0)
    const refused = await fetch(`https://127.0.0.1:${target.port}/redfish/v1/`, {
      tls: { rejectUnauthorized: false }
    }).catch((error: Error) => error)
    expect(refused).toBeInstanceOf(Error)
  }, 420_000)
})
