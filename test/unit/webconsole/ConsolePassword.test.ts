import { describe, expect, spyOn, test } from "bun:test"
import { Effect } from "effect"
import { vncPasswordPrefix } from "../../../src/config/areas/Services.ts"
import type { Graphics } from "../../../src/domain/Config.ts"
import {
  generatePassword,
  passwordAlphabet,
  withConsolePassword
} from "../../../src/webconsole/ConsolePassword.ts"
import { makeConfig } from "../libvirt/fixtures.ts"

/** Runs `withConsolePassword` and returns the configuration and what it printed. */
const resolve = async (graphics: Partial<Graphics>) => {
  const printed: Array<string> = []
  const write = spyOn(process.stdout, "write").mockImplementation((text) => {
    printed.push(String(text))
    return true
  })
  try {
    const config = await Effect.runPromise(withConsolePassword(makeConfig({ graphics })))
    return { config, printed }
  } finally {
    write.mockRestore()
  }
}

describe("generatePassword", () => {
  test("uses the unambiguous alphabet", () => {
    const password = generatePassword(200)
    expect(password).toHaveLength(200)
    expect([...password].every((character) => passwordAlphabet.includes(character))).toBe(true)
    expect(passwordAlphabet).not.toMatch(/[0O1lI]/)
  })

  test("differs between calls", () => {
    expect(generatePassword(16)).not.toBe(generatePassword(16))
  })
})

describe("withConsolePassword", () => {
  test("no display needs no password", async () => {
    const { config, printed } = await resolve({ mode: "none", vncPassword: undefined })
    expect(config.graphics.vncPassword).toBeUndefined()
    expect(printed).toEqual([])
  })

  test("keeps VNC_PASSWORD", async () => {
    const { config, printed } = await resolve({ mode: "novnc", vncPassword: "mine" })
    expect(config.graphics.vncPassword).toBe("mine")
    expect(printed).toEqual([])
  })

  test("generates 8 characters for VNC and prints them once", async () => {
    const { config, printed } = await resolve({ mode: "vnc", vncPassword: undefined })
    const password = config.graphics.vncPassword ?? ""
    expect(password).toHaveLength(8)
    expect(printed).toHaveLength(1)
    expect(printed[0]).toContain(password)
  })

  test("generates 16 characters for the web console", async () => {
    const { config } = await resolve({ mode: "novnc", vncPassword: undefined })
    expect(config.graphics.vncPassword).toHaveLength(16)
  })
})

describe("vncPasswordPrefix", () => {
  const cases: ReadonlyArray<readonly [string, string]> = [
    ["short", "short"],
    ["exactly8", "exactly8"],
    ["longer than eight", "longer t"],
    ["abcdefgü", "abcdefg"],
    ["üüüüü", "üüüü"]
  ]
  for (const [password, prefix] of cases) {
    test(`${password} becomes ${prefix}`, () => {
      expect(vncPasswordPrefix(password)).toBe(prefix)
    })
  }
})
