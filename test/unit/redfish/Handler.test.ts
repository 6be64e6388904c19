import { describe, expect, test } from "bun:test"
import { etagOf, ifMatchAllows, normalizePath } from "../../../src/redfish/Handler.ts"
import { paths } from "../../../src/redfish/Resources.ts"
import { makeService } from "./fakes.ts"
import { shapeProblems } from "./shape.ts"

const system = paths.system("system-1")
const reset = paths.reset("system-1")

/** The MessageId of an error reply. */
const messageId = (body: unknown) =>
  (body as { error: { "@Message.ExtendedInfo": Array<{ MessageId: string }> } }).error[
    "@Message.ExtendedInfo"
  ][0]?.MessageId

describe("resources", () => {
  const resources = [
    paths.root,
    paths.systems,
    system,
    paths.managers,
    paths.manager,
    paths.virtualMediaCollection,
    paths.virtualMedia,
    paths.chassisCollection,
    paths.chassis("system-1"),
    paths.sessionService,
    paths.sessions
  ]
  for (const path of resources) {
    test(`${path} follows the DMTF shape`, async () => {
      const { request } = makeService()
      const reply = await request("GET", path)
      expect(reply.status).toBe(200)
      expect(shapeProblems(reply.body, path)).toEqual([])
      expect(reply.headers.ETag).toBe(etagOf(reply.body))
    })
  }

  test("every linked resource exists", async () => {
    const { request } = makeService()
    const seen = new Set<string>()
    const queue: Array<string> = [paths.root]
    while (queue.length > 0) {
      const path = queue.shift() as string
      if (seen.has(path)) continue
      seen.add(path)
      const reply = await request("GET", path)
      expect({ path, status: reply.status }).toEqual({ path, status: 200 })
      const text = JSON.stringify(reply.body)
      for (const match of text.matchAll(/"@odata\.id":"([^"]+)"/g)) queue.push(match[1] as string)
    }
    expect(seen.size).toBeGreaterThanOrEqual(11)
  })

  test("the system describes the machine", async () => {
    const { request } = makeService()
    const body = (await request("GET", system)).body as Record<string, unknown>
    expect(body.Id).toBe("system-1")
    expect(body.Name).toBe("testvm")
    expect(body.UUID).toBe("7a4f1c2e-0000-4000-8000-000000000001")
    expect(body.PowerState).toBe("On")
    expect(body.Boot).toMatchObject({
      BootSourceOverrideEnabled: "Disabled",
      BootSourceOverrideTarget: "None",
      BootSourceOverrideMode: "UEFI"
    })
  })

  test("versions, odata and metadata need no login", async () => {
    const { request } = makeService()
    expect((await request("GET", "/redfish", { auth: false })).body).toEqual({ v1: "/redfish/v1/" })
    expect((await request("GET", "/redfish/v1", { auth: false })).status).toBe(200)
    expect((await request("GET", paths.odata, { auth: false })).status).toBe(200)
    const metadata = await request("GET", paths.metadata, { auth: false })
    expect(metadata.headers["Content-Type"]).toContain("application/xml")
    expect(String(metadata.body)).toContain('<edmx:Include Namespace="ComputerSystem.v1_10_0"/>')
  })

  test("unknown paths and methods", async () => {
    const { request } = makeService()
    const missing = await request("GET", "/redfish/v1/Systems/other")
    expect(missing.status).toBe(404)
    expect(messageId(missing.body)).toBe("Base.1.8.1.ResourceMissingAtURI")
    const wrongMethod = await request("DELETE", system)
    expect(wrongMethod.status).toBe(405)
    expect(wrongMethod.headers.Allow).toBe("GET, PATCH")
  })

  test("trailing slashes are ignored", () => {
    expect(normalizePath("/redfish/v1/Systems/")).toBe("/redfish/v1/Systems")
    expect(normalizePath("/redfish/v1")).toBe("/redfish/v1/")
  })
})

describe("authentication", () => {
  test("a protected resource needs credentials", async () => {
    const { request } = makeService()
    const reply = await request("GET", paths.systems, { auth: false })
    expect(reply.status).toBe(401)
    expect(reply.headers["WWW-Authenticate"]).toBe('Basic realm="Redfish"')
  })

  test("a wrong password is rejected", async () => {
    const { request } = makeService()
    const basic = `Basic ${Buffer.from("admin:wrong").toString("base64")}`
    const reply = await request("GET", paths.systems, { headers: { authorization: basic } })
    expect(reply.status).toBe(401)
    expect(messageId(reply.body)).toBe("Base.1.8.1.NoValidSession")
  })

  test("10 failures a minute block logins", async () => {
    const { request } = makeService()
    const basic = `Basic ${Buffer.from("admin:wrong").toString("base64")}`
    for (let i = 0; i < 10; i++)
      await request("GET", paths.systems, { headers: { authorization: basic } })
    const reply = await request("GET", paths.systems)
    expect(reply.status).toBe(429)
    expect(Number(reply.headers["Retry-After"])).toBeGreaterThan(0)
  })

  test("a session logs in, works and logs out", async () => {
    const { request } = makeService()
    const login = await request("POST", paths.sessions, {
      auth: false,
      body: { UserName: "admin", Password: "s3cret-pass" }
    })
    expect(login.status).toBe(201)
    const token = login.headers["X-Auth-Token"] as string
    const location = login.headers.Location as string
    expect(location).toStartWith(`${paths.sessions}/`)
    expect(shapeProblems(login.body, location)).toEqual([])
    expect((login.body as { Password: unknown }).Password).toBeNull()

    const withToken = { auth: false, headers: { "X-Auth-Token": token } }
    expect((await request("GET", system, withToken)).status).toBe(200)
    const session = await request("GET", location, withToken)
    expect(shapeProblems(session.body, location)).toEqual([])
    expect((await request("DELETE", location, withToken)).status).toBe(204)
    expect((await request("GET", system, withToken)).status).toBe(401)
  })

  test("a session login with a wrong password fails", async () => {
    const { request } = makeService()
    const login = await request("POST", paths.sessions, {
      auth: false,
      body: { UserName: "admin", Password: "nope" }
    })
    expect(login.status).toBe(401)
    expect(login.headers["X-Auth-Token"]).toBeUndefined()
  })
})

describe("boot override", () => {
  test("PATCH sets a one-time override", async () => {
    const { request, state } = makeService()
    const reply = await request("PATCH", system, {
      body: { Boot: { BootSourceOverrideTarget: "Pxe", BootSourceOverrideEnabled: "Once" } }
    })
    expect(reply.status).toBe(200)
    expect(state.override).toEqual({ enabled: "Once", target: "Pxe" })
    expect((reply.body as { Boot: unknown }).Boot).toMatchObject({
      BootSourceOverrideTarget: "Pxe",
      BootSourceOverrideEnabled: "Once"
    })
  })

  test("If-Match with the current ETag succeeds, a stale one fails", async () => {
    const { request } = makeService()
    const current = (await request("GET", system)).headers.ETag as string
    const body = {
      Boot: { BootSourceOverrideTarget: "Cd", BootSourceOverrideEnabled: "Continuous" }
    }
    const weak = await request("PATCH", system, { body, headers: { "If-Match": `W/${current}` } })
    expect(weak.status).toBe(200)
    const stale = await request("PATCH", system, { body, headers: { "If-Match": current } })
    expect(stale.status).toBe(412)
    expect(messageId(stale.body)).toBe("Base.1.8.1.PreconditionFailed")
  })

  test("invalid values are rejected", async () => {
    const { request, state } = makeService()
    const cases = [
      [{ Boot: { BootSourceOverrideTarget: "Floppy" } }, "PropertyValueNotInList"],
      [{ Boot: { BootSourceOverrideEnabled: "Always" } }, "PropertyValueNotInList"],
      [{ Boot: { BootSourceOverrideMode: "Legacy" } }, "PropertyValueNotInList"],
      [{ Boot: { BootOrder: ["Hdd"] } }, "PropertyUnknown"],
      [{ AssetTag: "x" }, "PropertyUnknown"]
    ] as const
    for (const [body, id] of cases) {
      const reply = await request("PATCH", system, { body })
      expect({ body, status: reply.status, id: messageId(reply.body) }).toEqual({
        body,
        status: 400,
        id: `Base.1.8.1.${id}`
      })
    }
    expect(state.calls).toEqual([])
  })

  test("the current boot mode is accepted", async () => {
    const { request } = makeService()
    const reply = await request("PATCH", system, {
      body: { Boot: { BootSourceOverrideMode: "UEFI", BootSourceOverrideTarget: "Hdd" } }
    })
    expect(reply.status).toBe(200)
  })

  test("ifMatchAllows", () => {
    expect(ifMatchAllows(null, '"a"')).toBe(true)
    expect(ifMatchAllows("*", '"a"')).toBe(true)
    expect(ifMatchAllows('"b", W/"a"', '"a"')).toBe(true)
    expect(ifMatchAllows('"b"', '"a"')).toBe(false)
  })
})

describe("ComputerSystem.Reset", () => {
  const cases = [
    ["On", "powerOn"],
    ["ForceOff", "forceOff"],
    ["GracefulShutdown", "gracefulShutdown"],
    ["ForceRestart", "forceRestart"],
    ["GracefulRestart", "gracefulRestart"]
  ] as const
  for (const [resetType, call] of cases) {
    test(`${resetType} calls ${call}`, async () => {
      const { request, state } = makeService()
      const reply = await request("POST", reset, { body: { ResetType: resetType } })
      expect(reply.status).toBe(204)
      expect(state.calls).toEqual([call])
    })
  }

  test("PushPowerButton presses or powers on", async () => {
    const { request, state } = makeService()
    await request("POST", reset, { body: { ResetType: "PushPowerButton" } })
    state.power = "Off"
    await request("POST", reset, { body: { ResetType: "PushPowerButton" } })
    expect(state.calls).toEqual(["gracefulShutdown", "powerOn"])
  })

  test("a missing or unknown type is rejected", async () => {
    const { request, state } = makeService()
    const missing = await request("POST", reset, { body: {} })
    expect(messageId(missing.body)).toBe("Base.1.8.1.ActionParameterMissing")
    const unknown = await request("POST", reset, { body: { ResetType: "Nmi" } })
    expect(unknown.status).toBe(400)
    expect(messageId(unknown.body)).toBe("Base.1.8.1.ActionParameterValueNotInList")
    const malformed = await request("POST", reset, { headers: {}, body: undefined })
    expect(malformed.status).toBe(400)
    expect(state.calls).toEqual([])
  })
})

describe("virtual media", () => {
  const insert = paths.insertMedia

  test("InsertMedia downloads and attaches an ISO", async () => {
    const { request, state } = makeService()
    const image = "http://127.0.0.1:8000/media.iso"
    const reply = await request("POST", insert, { body: { Image: image, Inserted: true } })
    expect(reply.status).toBe(204)
    expect(state.calls).toEqual(["insertMedia /data/base/media.iso"])
    const media = (await request("GET", paths.virtualMedia)).body as Record<string, unknown>
    expect(media).toMatchObject({
      Image: image,
      ImageName: "media.iso",
      Inserted: true,
      WriteProtected: true,
      ConnectedVia: "URI"
    })
  })

  test("a second InsertMedia needs an eject first", async () => {
    const { request } = makeService()
    await request("POST", insert, { body: { Image: "http://h/a.iso" } })
    const second = await request("POST", insert, { body: { Image: "http://h/b.iso" } })
    expect(second.status).toBe(409)
    expect((await request("POST", paths.ejectMedia, { body: {} })).status).toBe(204)
    const media = (await request("GET", paths.virtualMedia)).body as Record<string, unknown>
    expect(media).toMatchObject({ Image: null, Inserted: false, ConnectedVia: "NotConnected" })
    expect((await request("POST", insert, { body: { Image: "http://h/b.iso" } })).status).toBe(204)
  })

  test("bad images are rejected", async () => {
    const { request, state } = makeService()
    const cases = [
      [{}, 400, "ActionParameterMissing"],
      [{ Image: "file:///etc/passwd" }, 400, "ActionParameterValueFormatError"],
      [{ Image: "http://h/disk.qcow2" }, 400, "ActionParameterValueFormatError"],
      [{ Image: "http://h/unreachable" }, 400, "CouldNotEstablishConnection"],
      [{ Image: "http://h/a.iso", WriteProtected: false }, 400, "ActionParameterValueNotInList"]
    ] as const
    for (const [body, status, id] of cases) {
      const reply = await request("POST", insert, { body })
      expect({ body, status: reply.status, id: messageId(reply.body) }).toEqual({
        body,
        status,
        id: `Base.1.8.1.${id}`
      })
    }
    expect(state.calls).toEqual([])
  })
})
