import { describe, expect, test } from "bun:test"
import { FailureLimiter, passwordMatches } from "../../../src/webconsole/LoginGuard.ts"
import { loginPage, safeNext } from "../../../src/webconsole/LoginPage.ts"

describe("passwordMatches", () => {
  test("equal passwords", () => {
    expect(passwordMatches("s3cret", "s3cret")).toBe(true)
  })

  test("different passwords and lengths", () => {
    expect(passwordMatches("s3cret", "s3cre")).toBe(false)
    expect(passwordMatches("", "s3cret")).toBe(false)
    expect(passwordMatches("S3cret", "s3cret")).toBe(false)
  })
})

describe("FailureLimiter", () => {
  const makeLimiter = () => {
    let now = 1_000_000
    const limiter = new FailureLimiter({ maxFailures: 3, windowMs: 60_000 }, () => now)
    return { limiter, advance: (ms: number) => (now += ms) }
  }

  test("allows logins below the limit", () => {
    const { limiter } = makeLimiter()
    limiter.recordFailure()
    limiter.recordFailure()
    expect(limiter.retryAfterMs()).toBe(0)
  })

  test("blocks at the limit until the oldest failure ages out", () => {
    const { limiter, advance } = makeLimiter()
    limiter.recordFailure()
    advance(10_000)
    limiter.recordFailure()
    limiter.recordFailure()
    expect(limiter.retryAfterMs()).toBe(50_000)
    advance(50_000)
    expect(limiter.retryAfterMs()).toBe(0)
  })

  test("counts every failure since start", () => {
    const { limiter, advance } = makeLimiter()
    limiter.recordFailure()
    advance(120_000)
    expect(limiter.recordFailure()).toBe(2)
  })
})

describe("safeNext", () => {
  const fallback = "/vnc.html"
  const cases: ReadonlyArray<readonly [string | null, string]> = [
    ["/vnc.html?autoconnect=1&resize=scale", "/vnc.html?autoconnect=1&resize=scale"],
    ["/app/ui.js", "/app/ui.js"],
    [null, fallback],
    ["", fallback],
    ["https://evil.example/", fallback],
    ["//evil.example/", fallback],
    ["/\\evil.example", fallback],
    ["vnc.html", fallback],
    ["/a b", fallback]
  ]
  for (const [next, expected] of cases) {
    test(`${JSON.stringify(next)} leads to ${expected}`, () => {
      expect(safeNext(next, fallback)).toBe(expected)
    })
  }
})

describe("loginPage", () => {
  test("escapes the name, the target and the error", () => {
    const page = loginPage("<vm>", '/x"><script>', "bad & wrong")
    expect(page).toContain("&lt;vm&gt;")
    expect(page).toContain('value="/x&quot;&gt;&lt;script&gt;"')
    expect(page).toContain("bad &amp; wrong")
    expect(page).not.toContain("<script>")
  })

  test("posts the password to /login", () => {
    const page = loginPage("vm", "/vnc.html")
    expect(page).toContain('<form method="post" action="/login">')
    expect(page).toContain('type="password" id="password" name="password"')
  })
})
