import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { FileLock } from "../../../src/images/FileLock.ts"

let directory: string

beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), "vm-runner-lock-"))
})

afterAll(() => rmSync(directory, { recursive: true, force: true }))

const withLock = <A>(path: string, effect: Effect.Effect<A>) =>
  Effect.runPromise(
    FileLock.use((locks) => locks.withLock(path, "the test", effect)).pipe(
      Effect.provide(FileLock.layer)
    )
  )

describe("FileLock", () => {
  test("waits for another process", async () => {
    const path = join(directory, "shared.lock")
    const child = Bun.spawn(["bun", join(import.meta.dir, "lock-holder.ts"), path, "600"], {
      stdout: "pipe",
      stderr: "inherit"
    })
    const reader = child.stdout.getReader()
    const { value } = await reader.read()
    expect(new TextDecoder().decode(value)).toContain("locked")
    const started = Date.now()
    await withLock(path, Effect.void)
    expect(Date.now() - started).toBeGreaterThanOrEqual(400)
    expect(await child.exited).toBe(0)
  })

  test("is released when the holder is killed", async () => {
    const path = join(directory, "killed.lock")
    const child = Bun.spawn(["bun", join(import.meta.dir, "lock-holder.ts"), path, "60000"], {
      stdout: "pipe",
      stderr: "inherit"
    })
    await child.stdout.getReader().read()
    const started = Date.now()
    setTimeout(() => child.kill("SIGKILL"), 300)
    await withLock(path, Effect.void)
    expect(Date.now() - started).toBeLessThan(5000)
    expect(child.signalCode).toBe("SIGKILL")
  })

  test("serialises fibers of one process", async () => {
    const path = join(directory, "fibers.lock")
    const order: Array<string> = []
    const step = (name: string) =>
      Effect.sync(() => order.push(`${name} start`)).pipe(
        Effect.andThen(Effect.sleep("50 millis")),
        Effect.andThen(Effect.sync(() => order.push(`${name} end`)))
      )
    await Promise.all([withLock(path, step("a")), withLock(path, step("b"))])
    expect(order[1]).toBe(`${order[0]!.split(" ")[0]} end`)
  })
})
