/**
 * Renders every configuration of the table and checks it against libvirt's own RELAX NG schema
 * with `virt-xml-validate` (Debian package libvirt-clients), which needs no running daemon.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { renderDomainXml } from "../../../src/libvirt/BuildDomain.ts"
import { configurationTable, makeInputs } from "./fixtures.ts"

const validator = "virt-xml-validate"
let workDir = ""

beforeAll(() => {
  if (Bun.which(validator) === null) {
    throw new Error(
      `${validator} is not installed, so the domain XML cannot be checked against libvirt's ` +
        "schema; install it (Debian: apt-get install libvirt-clients) and run the tests again"
    )
  }
  workDir = mkdtempSync(join(tmpdir(), "vm-runner-domain-xml-"))
})

afterAll(() => {
  if (workDir !== "") rmSync(workDir, { recursive: true, force: true })
})

describe("domain XML against libvirt's schema", () => {
  test("table covers at least 25 configurations", () => {
    expect(configurationTable.length).toBeGreaterThanOrEqual(25)
  })

  for (const [name, overrides] of configurationTable) {
    test(name, () => {
      const path = join(workDir, `${name}.xml`)
      writeFileSync(path, renderDomainXml(makeInputs(overrides)))
      const result = Bun.spawnSync([validator, path, "domain"])
      const output = `${result.stdout.toString()}${result.stderr.toString()}`.trim()
      expect(output).toBe(`${path} validates`)
      expect(result.exitCode).toBe(0)
    })
  }
})
