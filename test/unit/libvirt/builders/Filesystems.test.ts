import { describe, expect, test } from "bun:test"
import { renderDomainXml } from "../../../../src/libvirt/BuildDomain.ts"
import { buildFilesystems } from "../../../../src/libvirt/builders/Filesystems.ts"
import { makeInputs, makeShare } from "../fixtures.ts"

describe("buildFilesystems", () => {
  test("no shares, no filesystems", () => {
    expect(buildFilesystems(makeInputs())).toEqual([])
  })

  test("virtiofs names the virtiofsd binary", () => {
    const [share] = buildFilesystems(makeInputs({ config: { filesystems: [makeShare()] } }))
    expect(share).toEqual({
      type: "mount",
      accessmode: "passthrough",
      driver: { type: "virtiofs" },
      binary: { path: "/usr/lib/qemu/virtiofsd" },
      source: { dir: "/srv/share" },
      target: { dir: "share" },
      readonly: false
    })
  })

  test("virtiofs in a container uses the chroot sandbox", () => {
    const inputs = makeInputs({
      virtiofsSandbox: "chroot",
      config: { filesystems: [makeShare()] }
    })
    expect(buildFilesystems(inputs)[0]?.binary).toEqual({
      path: "/usr/lib/qemu/virtiofsd",
      sandbox: "chroot"
    })
  })

  test("chroot sandbox is serialized inside binary", () => {
    const xml = renderDomainXml(
      makeInputs({ virtiofsSandbox: "chroot", config: { filesystems: [makeShare()] } })
    )
    expect(xml).toContain(
      "<binary path='/usr/lib/qemu/virtiofsd'>\n        <sandbox mode='chroot'/>\n      </binary>"
    )
  })

  test("virtiofs without a known binary leaves it to libvirt", () => {
    const inputs = makeInputs({ virtiofsd: undefined, config: { filesystems: [makeShare()] } })
    expect(buildFilesystems(inputs)[0]?.binary).toBeUndefined()
  })

  test("9p uses the path driver and the access mode", () => {
    const shares = [
      makeShare({ driver: "9p", accessMode: "mapped", tag: "a" }),
      makeShare({ index: 2, driver: "9p", accessMode: "squash", tag: "b" })
    ]
    const filesystems = buildFilesystems(makeInputs({ config: { filesystems: shares } }))
    expect(filesystems.map((share) => share.driver)).toEqual([{ type: "path" }, { type: "path" }])
    expect(filesystems.map((share) => share.accessmode)).toEqual(["mapped", "squash"])
    expect(filesystems.map((share) => share.binary)).toEqual([undefined, undefined])
    expect(filesystems.map((share) => share.target.dir)).toEqual(["a", "b"])
  })

  test("9p read-only share is read-only", () => {
    const share = makeShare({ driver: "9p", readonly: true })
    const inputs = makeInputs({ config: { filesystems: [share] } })
    expect(buildFilesystems(inputs)[0]?.readonly).toBe(true)
  })

  test("virtiofs read-only needs libvirt support", () => {
    const share = makeShare({ driver: "virtiofs", readonly: true })
    const without = makeInputs({ virtiofsReadonly: false, config: { filesystems: [share] } })
    expect(buildFilesystems(without)[0]?.readonly).toBe(false)
    const withSupport = makeInputs({ virtiofsReadonly: true, config: { filesystems: [share] } })
    expect(buildFilesystems(withSupport)[0]?.readonly).toBe(true)
  })
})
