import { describe, expect, test } from "bun:test"
import { formatEta, renderBar, renderLine } from "../../../src/images/Progress.ts"

const MiB = 1024 * 1024

describe("formatEta", () => {
  test("minutes and seconds", () => {
    expect(formatEta(75)).toBe("1:15")
  })

  test("hours do not wrap", () => {
    expect(formatEta(3 * 3600 + 62)).toBe("3:01:02")
  })
})

describe("renderBar", () => {
  test("known total", () => {
    const line = renderBar("base image", { done: 50 * MiB, total: 200 * MiB, rate: 10 * MiB }, 10)
    expect(line).toBe("base image [###-------]  25.0% 50.0 MiB/200.0 MiB 10.0 MiB/s ETA 0:15")
  })

  test("unknown total", () => {
    expect(renderBar("iso", { done: 3 * MiB, total: undefined, rate: undefined })).toBe(
      "iso 3.0 MiB -- /s"
    )
  })
})

describe("renderLine", () => {
  test("plain line with ETA", () => {
    expect(renderLine("base image", { done: MiB, total: 4 * MiB, rate: MiB })).toBe(
      "base image: 1.0 MiB of 4.0 MiB (25%), 1.0 MiB/s, about 0:03 left"
    )
  })
})
