import { describe, expect, test } from "bun:test"
import { checkFlagCombination, maskXmlSecrets } from "../../../src/cli/Cli.ts"

const none = { listDistros: false, showConfig: false, showXml: false, dryRun: false, json: false }

describe("checkFlagCombination", () => {
  test("no flags: the main run", () => {
    expect(checkFlagCombination(none)).toBeUndefined()
  })

  test("--show-config --json", () => {
    expect(checkFlagCombination({ ...none, showConfig: true, json: true })).toBeUndefined()
  })

  test("--json alone", () => {
    expect(checkFlagCombination({ ...none, json: true })).toStartWith(
      "--json works only with --show-config"
    )
  })

  test("--json with --dry-run", () => {
    expect(checkFlagCombination({ ...none, dryRun: true, json: true })).toStartWith("--json")
  })

  test("two modes", () => {
    expect(checkFlagCombination({ ...none, showConfig: true, dryRun: true })).toBe(
      "--show-config and --dry-run exclude each other; give one of them"
    )
  })
})

describe("maskXmlSecrets", () => {
  test("single and double quotes", () => {
    expect(maskXmlSecrets(`<graphics type='vnc' passwd='abcdefgh'/>`)).toBe(
      `<graphics type='vnc' passwd='********'/>`
    )
    expect(maskXmlSecrets(`<graphics passwd="s3cret" port="5900"/>`)).toBe(
      `<graphics passwd="********" port="5900"/>`
    )
  })

  test("XML without a password is unchanged", () => {
    expect(maskXmlSecrets(`<graphics type='vnc' port='5900'/>`)).toBe(
      `<graphics type='vnc' port='5900'/>`
    )
  })
})
