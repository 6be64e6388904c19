import { describe, expect, test } from "bun:test"
import {
  imageName,
  metadataDocument,
  odataTypes,
  serviceUuid,
  virtualMedia
} from "../../../src/redfish/Resources.ts"

describe("serviceUuid", () => {
  test("is a stable version 5 UUID apart from the machine's", () => {
    const machine = "7a4f1c2e-0000-4000-8000-000000000001"
    const uuid = serviceUuid(machine)
    expect(uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(serviceUuid(machine)).toBe(uuid)
    expect(uuid).not.toBe(machine)
  })
})

describe("metadataDocument", () => {
  test("references the schema of every type", () => {
    const xml = metadataDocument()
    for (const odataType of Object.values(odataTypes)) {
      const namespace = odataType.slice(1).split(".")[0]
      expect(xml).toContain(
        `<edmx:Reference Uri="http://redfish.dmtf.org/schemas/v1/${namespace}_v1.xml">`
      )
    }
    expect(xml).toContain('Extends="ServiceRoot.v1_5_0.ServiceContainer"')
  })

  test("is well-formed XML", () => {
    const result = Bun.spawnSync(["xmllint", "--noout", "-"], {
      stdin: Buffer.from(metadataDocument())
    })
    expect(result.stderr.toString()).toBe("")
    expect(result.exitCode).toBe(0)
  })
})

describe("virtualMedia", () => {
  test("names the image by its URL's file", () => {
    expect(imageName("https://example.org/isos/debian%2012.iso?x=1")).toBe("debian 12.iso")
    expect(imageName("not a url")).toBe("")
  })

  test("reports HTTPS for an https image", () => {
    const media = virtualMedia({ image: "https://h/a.iso", path: "/x.iso" })
    expect(media.TransferProtocolType).toBe("HTTPS")
  })
})
