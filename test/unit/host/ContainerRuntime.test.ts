import { describe, expect, test } from "bun:test"
import { describeRuntime, isRootlessMap } from "../../../src/host/ContainerRuntime.ts"

describe("isRootlessMap", () => {
  const cases: ReadonlyArray<readonly [name: string, uidMap: string, rootless: boolean]> = [
    ["host's identity map", "         0          0 4294967295\n", false],
    ["rootful container", "0 0 4294967295", false],
    [
      "rootless Docker",
      "         0       1000          1\n         1     100000      65536\n",
      true
    ],
    ["rootless Podman", "0 1000 1\n1 524288 65536\n", true],
    ["userns-remap daemon", "0 165536 65536\n", true],
    ["root not mapped", "1000 1000 1\n", false],
    ["empty file", "", false],
    ["tabs between fields", "0\t1000\t1\n", true],
    ["line with one field", "0\n", false]
  ]

  for (const [name, uidMap, rootless] of cases) {
    test(name, () => {
      expect(isRootlessMap(uidMap)).toBe(rootless)
    })
  }
})

describe("describeRuntime", () => {
  test("no container", () => {
    expect(describeRuntime({ engine: "none", rootless: false })).toBe("no container")
  })

  test("rootless engine", () => {
    expect(describeRuntime({ engine: "podman", rootless: true })).toBe("podman (rootless)")
  })

  test("rootful engine", () => {
    expect(describeRuntime({ engine: "kubernetes", rootless: false })).toBe("kubernetes")
  })
})
