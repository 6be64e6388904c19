import { describe, expect, test } from "bun:test"
import { maxSessions, SessionStore } from "../../../src/redfish/Sessions.ts"

describe("SessionStore", () => {
  test("expires idle sessions", () => {
    let now = 0
    const sessions = new SessionStore(1000, () => now)
    const session = sessions.create("admin")
    now = 999
    expect(sessions.use(session.token)?.id).toBe(session.id)
    now = 1998
    expect(sessions.use(session.token)).toBeDefined()
    now = 3000
    expect(sessions.use(session.token)).toBeUndefined()
  })

  test("drops the least recently used beyond the limit", () => {
    let now = 0
    const sessions = new SessionStore(1_000_000, () => now)
    const first = sessions.create("admin")
    now += 1
    const second = sessions.create("admin")
    for (let i = 0; i < maxSessions - 2; i++) {
      now += 1
      sessions.create("admin")
    }
    now += 1
    sessions.use(first.token)
    now += 1
    sessions.create("admin")
    expect(sessions.ids()).toHaveLength(maxSessions)
    expect(sessions.use(first.token)).toBeDefined()
    expect(sessions.use(second.token)).toBeUndefined()
  })

  test("tokens are long and distinct", () => {
    const sessions = new SessionStore()
    const a = sessions.create("admin")
    const b = sessions.create("admin")
    expect(a.token).not.toBe(b.token)
    expect(a.token.length).toBeGreaterThanOrEqual(43)
  })
})
