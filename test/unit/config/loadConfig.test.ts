import { describe, expect, test } from "bun:test"
import { Effect, Exit } from "effect"
import { loadCatalogue, loadConfig } from "../../../src/config/LoadConfig.ts"
import { fakeHost } from "./fakeHost.ts"

const customCatalogue = `distributions:
  tiny:
    name: Tiny Linux
    url: https://example.com/tiny.qcow2
    arch: arm64
    user: tiny
`

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runSyncExit(effect)

const failureMessage = <A, E>(exit: Exit.Exit<A, E>): string => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  return String(exit.cause)
}

describe("loadCatalogue", () => {
  test("built-in catalogue by default", () => {
    const loaded = Effect.runSync(loadCatalogue({}, fakeHost()))
    expect(loaded.source).toBe("the built-in catalogue")
    expect(loaded.catalogue.has("ubuntu-2404")).toBe(true)
  })

  test("mounted /config/distros.yaml", () => {
    const host = fakeHost({ files: { "/config/distros.yaml": customCatalogue } })
    const loaded = Effect.runSync(loadCatalogue({}, host))
    expect(loaded.source).toBe("/config/distros.yaml")
    expect([...loaded.catalogue.keys()]).toEqual(["tiny"])
  })

  test("DISTROS_FILE replaces the mounted file", () => {
    const host = fakeHost({
      files: {
        "/config/distros.yaml": "distributions: {}",
        "/etc/my-distros.yaml": customCatalogue
      }
    })
    const loaded = Effect.runSync(loadCatalogue({ DISTROS_FILE: " /etc/my-distros.yaml " }, host))
    expect(loaded.source).toBe("/etc/my-distros.yaml")
    expect(loaded.catalogue.get("tiny")?.arch).toBe("aarch64")
  })

  test("DISTROS_FILE blank counts as unset", () => {
    const loaded = Effect.runSync(loadCatalogue({ DISTROS_FILE: "  " }, fakeHost()))
    expect(loaded.source).toBe("the built-in catalogue")
  })

  test("DISTROS_FILE missing", () => {
    const exit = run(loadCatalogue({ DISTROS_FILE: "/etc/none.yaml" }, fakeHost()))
    const message = failureMessage(exit)
    expect(message).toContain("invalid distribution catalogue /etc/none.yaml")
    expect(message).toContain("cannot read the file named by DISTROS_FILE")
  })

  test("unreadable mounted file", () => {
    const host = fakeHost({
      files: { "/config/distros.yaml": customCatalogue },
      unreadable: ["/config/distros.yaml"]
    })
    const message = failureMessage(run(loadCatalogue({}, host)))
    expect(message).toContain("cannot read the file; check that it exists")
  })
})

describe("loadConfig", () => {
  test("DISTRO from a custom catalogue", () => {
    const host = fakeHost({ files: { "/config/distros.yaml": customCatalogue } })
    const loaded = Effect.runSync(loadConfig({ DISTRO: "tiny" }, host))
    expect(loaded.config.distro.key).toBe("tiny")
    expect(loaded.config.arch).toBe("aarch64")
    expect(loaded.config.cloudInit.user).toBe("tiny")
    expect(loaded.source).toBe("/config/distros.yaml")
  })

  test("DISTRO unknown names the catalogue", () => {
    const host = fakeHost({ files: { "/config/distros.yaml": customCatalogue } })
    const message = failureMessage(run(loadConfig({}, host)))
    expect(message).toContain(
      "DISTRO is not set: the default distribution ubuntu-2404 is not in /config/distros.yaml; " +
        "set DISTRO (run --list-distros to see all 1) (for example DISTRO=tiny)"
    )
  })

  test("malformed catalogue stops before configuration", () => {
    const host = fakeHost({ files: { "/config/distros.yaml": "distributions: [a, b]" } })
    const message = failureMessage(run(loadConfig({ MEMORY: "lots" }, host)))
    expect(message).toContain("expected a top-level mapping 'distributions:'")
    expect(message).not.toContain("MEMORY")
  })
})
