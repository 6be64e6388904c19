import { afterEach, describe, expect, test } from "bun:test"
import { Clock, Effect, Fiber, Layer, Logger } from "effect"
import { TestClock } from "effect/testing"
import { ExitCode } from "../../../src/domain/ExitCode.ts"
import { type DomainState, Libvirt, LibvirtError } from "../../../src/libvirt/Libvirt.ts"
import { shutdownGuest, stopOnExit } from "../../../src/runtime/Lifecycle.ts"
import { stopOutcome } from "../../../src/runtime/Signals.ts"

/** How a fake guest reacts to shutdown requests. */
interface Guest {
  readonly running?: boolean
  /** The ACPI press after which the guest powers off; undefined ignores ACPI. */
  readonly offAfterPresses?: number
  /** Whether the guest agent's shutdown powers the guest off. */
  readonly agentWorks?: boolean
  /** Seconds from the deciding request until the guest is off. */
  readonly secondsToPowerOff?: number
  /** Whether every ACPI request fails in libvirt. */
  readonly acpiFails?: boolean
}

interface Call {
  readonly operation: "acpi" | "agent" | "destroy"
  /** Seconds since the test started, on the test clock. */
  readonly at: number
}

interface Outcome {
  readonly clean: boolean
  readonly calls: ReadonlyArray<Call>
  readonly logs: ReadonlyArray<string>
  /** Test-clock seconds until shutdownGuest returned. */
  readonly seconds: number
}

const domain = "testvm"

const unused = (operation: string) => () =>
  Effect.die(new Error(`shutdownGuest must not call Libvirt.${operation}`))

/** Builds a Libvirt whose one domain powers off as `guest` describes, recording each request. */
const fakeLibvirt = (guest: Guest, calls: Array<Call>) => {
  let state: DomainState = guest.running === false ? "shut off" : "running"
  let offAt: number | undefined
  let presses = 0
  const delay = (guest.secondsToPowerOff ?? 2) * 1000

  const record = (operation: Call["operation"]) =>
    Clock.currentTimeMillis.pipe(
      Effect.tap((now) => Effect.sync(() => calls.push({ operation, at: now / 1000 })))
    )

  return Libvirt.of({
    uri: "qemu:///system",
    virsh: unused("virsh"),
    ping: unused("ping"),
    define: unused("define"),
    undefine: unused("undefine"),
    start: unused("start"),
    dumpXml: unused("dumpXml"),
    capabilities: unused("capabilities"),
    domainCapabilities: unused("domainCapabilities"),
    state: () =>
      Clock.currentTimeMillis.pipe(
        Effect.map((now) => {
          if (offAt !== undefined && now >= offAt) state = "shut off"
          return state
        })
      ),
    shutdown: (_, mode) =>
      Effect.gen(function* () {
        const now = yield* record(mode)
        if (mode === "acpi" && guest.acpiFails === true) {
          return yield* new LibvirtError({
            operation: "shut down",
            domain,
            argv: ["virsh", "shutdown", domain, "--mode", "acpi"],
            detail: "Requested operation is not valid: domain is not running"
          })
        }
        if (mode === "acpi") presses++
        const decides =
          mode === "acpi"
            ? guest.offAfterPresses !== undefined && presses === guest.offAfterPresses
            : guest.agentWorks === true
        if (decides && offAt === undefined) offAt = now + delay
      }),
    destroy: () =>
      record("destroy").pipe(
        Effect.tap(() =>
          Effect.sync(() => {
            state = "shut off"
          })
        ),
        Effect.asVoid
      )
  })
}

const capturingLogger = (logs: Array<string>) =>
  Logger.layer([
    Logger.make(({ message }) => {
      logs.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
    })
  ])

/** Runs `shutdownGuest` on TestClock, moving it 100 ms at a time for up to ten minutes. */
const shutdown = async (guest: Guest, timeoutSeconds: number): Promise<Outcome> => {
  const calls: Array<Call> = []
  const logs: Array<string> = []
  const layer = Layer.mergeAll(
    Layer.succeed(Libvirt, fakeLibvirt(guest, calls)),
    capturingLogger(logs),
    TestClock.layer()
  )
  const program = Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(shutdownGuest(domain, timeoutSeconds))
    for (let step = 0; step < 6000 && fiber.pollUnsafe() === undefined; step++) {
      yield* TestClock.adjust("100 millis")
    }
    const clean = yield* Fiber.join(fiber)
    const seconds = (yield* Clock.currentTimeMillis) / 1000
    return { clean, seconds }
  })
  const { clean, seconds } = await Effect.runPromise(program.pipe(Effect.provide(layer)))
  return { clean, calls, logs, seconds }
}

const operations = (outcome: Outcome) => outcome.calls.map((call) => call.operation)
const timesOf = (outcome: Outcome, operation: Call["operation"]) =>
  outcome.calls.filter((call) => call.operation === operation).map((call) => call.at)

describe("shutdownGuest", () => {
  test("guest already off", async () => {
    const outcome = await shutdown({ running: false }, 90)
    expect(outcome.clean).toBe(true)
    expect(outcome.calls).toEqual([])
  })

  test("first ACPI press powers off", async () => {
    const outcome = await shutdown({ offAfterPresses: 1, secondsToPowerOff: 2 }, 90)
    expect(outcome.clean).toBe(true)
    expect(operations(outcome)).toEqual(["acpi"])
    expect(outcome.seconds).toBeCloseTo(2, 0)
  })

  test("third ACPI press powers off", async () => {
    const outcome = await shutdown({ offAfterPresses: 3, secondsToPowerOff: 1 }, 90)
    expect(outcome.clean).toBe(true)
    expect(timesOf(outcome, "acpi")).toEqual([0, 5, 10])
    // The agent is asked as well once the ACPI grace of 10 s has passed.
    expect(timesOf(outcome, "agent")).toEqual([10])
    expect(timesOf(outcome, "destroy")).toEqual([])
  })

  test("logs the time to power off", async () => {
    const outcome = await shutdown({ offAfterPresses: 2, secondsToPowerOff: 3 }, 90)
    expect(outcome.logs).toContain("the guest powered off after the ACPI request (8.0 s)")
  })

  test("ACPI pressed until power-off", async () => {
    const outcome = await shutdown({ agentWorks: true, secondsToPowerOff: 1 }, 90)
    expect(timesOf(outcome, "acpi")).toEqual([0, 5, 10])
  })

  test("agent powers off a guest that ignores ACPI", async () => {
    const outcome = await shutdown({ agentWorks: true, secondsToPowerOff: 4 }, 20)
    expect(outcome.clean).toBe(true)
    expect(timesOf(outcome, "agent")).toEqual([10])
    expect(timesOf(outcome, "destroy")).toEqual([])
    expect(outcome.logs).toContain(
      "the guest powered off after the ACPI and guest agent requests (14.0 s)"
    )
  })

  test("agent after ACPI errors", async () => {
    const outcome = await shutdown({ acpiFails: true, agentWorks: true }, 20)
    expect(outcome.clean).toBe(true)
    expect(timesOf(outcome, "agent")).toEqual([10])
  })

  test("guest that never powers off is destroyed", async () => {
    const outcome = await shutdown({}, 20)
    expect(outcome.clean).toBe(false)
    expect(operations(outcome)).toEqual(["acpi", "acpi", "acpi", "agent", "acpi", "destroy"])
    expect(timesOf(outcome, "destroy")).toEqual([20])
  })

  test("destroy only as the last call", async () => {
    const outcome = await shutdown({}, 90)
    expect(operations(outcome).indexOf("destroy")).toBe(outcome.calls.length - 1)
    expect(timesOf(outcome, "destroy")).toEqual([90])
  })

  test("agent powering off too late is destroyed", async () => {
    const outcome = await shutdown({ agentWorks: true, secondsToPowerOff: 15 }, 20)
    expect(outcome.clean).toBe(false)
    expect(operations(outcome).at(-1)).toBe("destroy")
  })
})

describe("stopOnExit", () => {
  afterEach(() => {
    stopOutcome.exitCode = undefined
  })

  const stop = async (guest: Guest) => {
    const layer = Layer.mergeAll(
      Layer.succeed(Libvirt, fakeLibvirt(guest, [])),
      capturingLogger([]),
      TestClock.layer()
    )
    const program = Effect.gen(function* () {
      const fiber = yield* Effect.forkChild(stopOnExit(domain, 20))
      for (let step = 0; step < 600 && fiber.pollUnsafe() === undefined; step++) {
        yield* TestClock.adjust("100 millis")
      }
      yield* Fiber.join(fiber)
    })
    await Effect.runPromise(program.pipe(Effect.provide(layer)))
  }

  test("hard stop sets the guest exit code", async () => {
    await stop({})
    expect(stopOutcome.exitCode).toBe(ExitCode.Guest)
  })

  test("clean power-off leaves the exit code", async () => {
    await stop({ offAfterPresses: 1 })
    expect(stopOutcome.exitCode).toBeUndefined()
  })
})
