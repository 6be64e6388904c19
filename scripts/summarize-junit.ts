/**
 * Prints "N passed, N failed" from the JUnit files bun test wrote, the line CI reads. A run that
 * failed without any failing test case in its reports (a crash, a load error) adds one failure.
 */
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

const [dir = ".tmp/test-results", status = "0"] = process.argv.slice(2)
let passed = 0
let failed = 0
for (const name of readdirSync(dir).filter((file) => file.endsWith(".xml"))) {
  const xml = readFileSync(join(dir, name), "utf8")
  const suites = /<testsuites[^>]*>/.exec(xml)?.[0] ?? ""
  const attribute = (key: string) => Number(new RegExp(`${key}="(\\d+)"`).exec(suites)?.[1] ?? 0)
  const failures = attribute("failures") + attribute("errors")
  passed += attribute("tests") - failures - attribute("skipped")
  failed += failures
}
if (status !== "0" && failed === 0) failed = 1
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
