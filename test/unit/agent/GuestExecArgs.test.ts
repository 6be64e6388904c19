import { describe, expect, test } from "bun:test"
import { Duration, Result } from "effect"
import {
  defaultAgentWait,
  type GuestExecArgs,
  guestExitStatus,
  parseGuestExecArgs,
  planGuestCommand
} from "../../../src/agent/GuestExec.ts"

const parsed = (argv: ReadonlyArray<string>): GuestExecArgs => {
  const result = parseGuestExecArgs(argv)
  if (Result.isFailure(result)) throw new Error(`expected success: ${result.failure.message}`)
  return result.success
}

const usageError = (argv: ReadonlyArray<string>): string => {
  const result = parseGuestExecArgs(argv)
  if (Result.isSuccess(result)) throw new Error(`expected a usage error for ${argv.join(" ")}`)
  return result.failure.message
}

const millis = (duration: Duration.Duration | undefined) =>
  duration === undefined ? undefined : Duration.toMillis(duration)

describe("parseGuestExecArgs", () => {
  test("options stop at the command", () => {
    const args = parsed(["ls", "-la", "/tmp"])
    expect(args.command).toEqual(["ls", "-la", "/tmp"])
    expect(args.wait).toBeUndefined()
    expect(args.timeout).toBeUndefined()
    expect(args.domain).toBeUndefined()
  })

  test("double dash ends options", () => {
    expect(parsed(["--", "--weird", "-x"]).command).toEqual(["--weird", "-x"])
    expect(parsed(["--timeout", "5", "--", "ls", "--", "-l"]).command).toEqual(["ls", "--", "-l"])
  })

  test("options after the command belong to it", () => {
    const args = parsed(["echo", "--timeout", "5", "--domain", "x"])
    expect(args.command).toEqual(["echo", "--timeout", "5", "--domain", "x"])
    expect(args.timeout).toBeUndefined()
  })

  test("wait without a value", () => {
    expect(millis(parsed(["--wait", "uptime"]).wait)).toBe(Duration.toMillis(defaultAgentWait))
  })

  test("wait with equals", () => {
    expect(millis(parsed(["--wait=15", "uptime"]).wait)).toBe(15_000)
  })

  test("wait with a separate number", () => {
    const args = parsed(["--wait", "2.5", "uptime"])
    expect(millis(args.wait)).toBe(2500)
    expect(args.command).toEqual(["uptime"])
  })

  test("timeout and domain, both spellings", () => {
    const args = parsed(["--timeout", "30", "--domain=vm1", "sleep", "1"])
    expect(millis(args.timeout)).toBe(30_000)
    expect(args.domain).toBe("vm1")
    const other = parsed(["--timeout=0.5", "--domain", "vm2", "true"])
    expect(millis(other.timeout)).toBe(500)
    expect(other.domain).toBe("vm2")
  })

  test("help", () => {
    expect(parsed(["--help"]).help).toBe(true)
    expect(parsed(["-h", "ignored"]).help).toBe(true)
  })

  test("single dash is a command", () => {
    expect(parsed(["-"]).command).toEqual(["-"])
  })

  const invalid: ReadonlyArray<[ReadonlyArray<string>, string]> = [
    [[], "missing COMMAND"],
    [["--wait"], "missing COMMAND"],
    [["--timeout"], "--timeout needs a value"],
    [["--domain="], "--domain needs a value"],
    [["--timeout", "abc", "ls"], '--timeout needs a positive number of seconds, got "abc"'],
    [["--timeout", "0", "ls"], "--timeout needs a positive number of seconds"],
    [["--timeout", "-3", "ls"], "--timeout needs a positive number of seconds"],
    [["--wait=soon", "ls"], '--wait needs a positive number of seconds, got "soon"'],
    [["-x", "ls"], 'unknown option "-x"'],
    [["--verbose", "ls"], 'put "--" before it']
  ]
  for (const [argv, expected] of invalid) {
    test(`rejects ${JSON.stringify(argv)}`, () => {
      expect(usageError(argv)).toContain(expected)
    })
  }
})

describe("planGuestCommand", () => {
  test("several words run directly", () => {
    expect(planGuestCommand(["ls", "-la", "/tmp"])).toEqual({ path: "ls", args: ["-la", "/tmp"] })
  })

  test("plain single word runs directly", () => {
    expect(planGuestCommand(["/usr/bin/uptime"])).toEqual({ path: "/usr/bin/uptime", args: [] })
  })

  test("single word with whitespace uses the shell", () => {
    expect(planGuestCommand(["uname -a"])).toEqual({ path: "/bin/sh", args: ["-c", "uname -a"] })
  })

  test("single word with shell syntax uses the shell", () => {
    for (const line of ["a|b", "echo$HOME", "FOO=1", "x>y", "exit\t3", "ls;ls", "~/bin/x"]) {
      expect(planGuestCommand([line])).toEqual({ path: "/bin/sh", args: ["-c", line] })
    }
  })

  test("several words never use the shell", () => {
    expect(planGuestCommand(["echo", "a b", "$HOME"])).toEqual({
      path: "echo",
      args: ["a b", "$HOME"]
    })
  })
})

describe("guestExitStatus", () => {
  test("exit code passes through", () => {
    expect(guestExitStatus({ exitCode: 0, signal: undefined })).toEqual({ status: 0 })
    expect(guestExitStatus({ exitCode: 42, signal: undefined })).toEqual({ status: 42 })
    expect(guestExitStatus({ exitCode: 255, signal: undefined })).toEqual({ status: 255 })
  })

  test("signal becomes 128 plus N", () => {
    expect(guestExitStatus({ exitCode: undefined, signal: 9 })).toEqual({ status: 137 })
    expect(guestExitStatus({ exitCode: undefined, signal: 15 })).toEqual({ status: 143 })
  })

  test("out of range code becomes 255 with a note", () => {
    const result = guestExitStatus({ exitCode: 3221225477, signal: undefined })
    expect(result?.status).toBe(255)
    expect(result?.note).toContain("3221225477")
  })

  test("neither code nor signal is unknown", () => {
    expect(guestExitStatus({ exitCode: undefined, signal: undefined })).toBeUndefined()
  })
})
