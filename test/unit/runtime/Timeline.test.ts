import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Logger } from "effect"
import { Timeline } from "../../../src/runtime/Timeline.ts"

let directory: string

beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), "vm-runner-timeline-"))
})

afterAll(() => rmSync(directory, { recursive: true, force: true }))

/** Runs `effect` and returns the messages it logged. */
const logsOf = async (effect: Effect.Effect<void>): Promise<Array<string>> => {
  const logs: Array<string> = []
  const logger = Logger.make(({ message }) => {
    logs.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
  })
  await Effect.runPromise(effect.pipe(Effect.provide(Logger.layer([logger]))))
  return logs
}

describe("Timeline.report", () => {
  test("empty before any mark", () => {
    expect(new Timeline(join(directory, "unused.json")).report()).toEqual({})
  })

  test("seconds rounded to two decimals", () => {
    const timeline = new Timeline(join(directory, "unused.json"))
    timeline.marks.set("image", 1.23456)
    timeline.marks.set("kernel", 12.005001)
    expect(timeline.report()).toEqual({ image: 1.23, kernel: 12.01 })
  })

  test("phases in the order they were marked", async () => {
    const timeline = new Timeline(join(directory, "unused.json"))
    await logsOf(timeline.mark("image", "image ready"))
    await logsOf(timeline.mark("prepare", "disks ready"))
    await logsOf(timeline.mark("start", "domain started"))
    expect(Object.keys(timeline.report())).toEqual(["image", "prepare", "start"])
  })

  test("later marks are not earlier", async () => {
    const timeline = new Timeline(join(directory, "unused.json"))
    await logsOf(timeline.mark("image", "image ready"))
    await logsOf(timeline.mark("agent", "agent up"))
    const image = timeline.marks.get("image") ?? Number.NaN
    const agent = timeline.marks.get("agent") ?? Number.NaN
    expect(image).toBeGreaterThanOrEqual(0)
    expect(agent).toBeGreaterThanOrEqual(image)
  })
})

describe("Timeline.mark", () => {
  test("logs the message with the elapsed time", async () => {
    const timeline = new Timeline(join(directory, "unused.json"))
    const logs = await logsOf(timeline.mark("image", "image ready"))
    expect(logs).toHaveLength(1)
    expect(logs[0]).toMatch(/^image ready \(\d+\.\d s\)$/)
  })
})

describe("Timeline.writeReport", () => {
  test("writes the JSON report", async () => {
    const path = join(directory, "boot-reports", "testvm.json")
    const timeline = new Timeline(path)
    timeline.marks.set("image", 1.5)
    timeline.marks.set("cloudInit", 42.125)
    await logsOf(timeline.writeReport())
    const report = JSON.parse(readFileSync(path, "utf8"))
    expect(report.secondsSinceStart).toEqual({ image: 1.5, cloudInit: 42.13 })
    expect(Number.isNaN(Date.parse(report.writtenAt))).toBe(false)
  })

  test("logs a summary naming the file", async () => {
    const path = join(directory, "summary.json")
    const timeline = new Timeline(path)
    timeline.marks.set("image", 1.5)
    timeline.marks.set("agent", 20)
    const logs = await logsOf(timeline.writeReport())
    expect(logs).toEqual([`boot timing: image 1.5 s, agent 20 s (also in ${path})`])
  })

  test("leaves no temporary file", async () => {
    const reports = join(directory, "clean")
    await logsOf(new Timeline(join(reports, "testvm.json")).writeReport())
    expect(readdirSync(reports)).toEqual(["testvm.json"])
  })

  test("unwritable path logs a warning", async () => {
    const blocker = join(directory, "a-file")
    writeFileSync(blocker, "")
    const logs = await logsOf(new Timeline(join(blocker, "testvm.json")).writeReport())
    expect(logs).toHaveLength(1)
    expect(logs[0]).toStartWith("cannot write the boot report: ")
  })
})
