import { randomBytes, randomUUID } from "node:crypto"

/** Seconds a session lives without a request (SessionService.SessionTimeout). */
export const sessionTimeoutSeconds = 1800
/**
 * Sessions kept at once. A client that logs in for every call and never logs out (common in
 * scripts) pushes out the least recently used session instead of growing memory.
 */
export const maxSessions = 64

export interface Session {
  readonly id: string
  readonly token: string
  readonly userName: string
  lastUsed: number
}

/** Redfish sessions (DSP0266 "Session login"), held in memory for the life of the service. */
export class SessionStore {
  private readonly byToken = new Map<string, Session>()

  constructor(
    private readonly timeoutMs = sessionTimeoutSeconds * 1000,
    private readonly now: () => number = Date.now
  ) {}

  create(userName: string): Session {
    this.expire()
    if (this.byToken.size >= maxSessions) {
      const oldest = [...this.byToken.values()].sort((a, b) => a.lastUsed - b.lastUsed)[0]
      if (oldest !== undefined) this.byToken.delete(oldest.token)
    }
    const session: Session = {
      id: randomUUID(),
      token: randomBytes(32).toString("base64url"),
      userName,
      lastUsed: this.now()
    }
    this.byToken.set(session.token, session)
    return session
  }

  /** The live session of `token`, whose idle time starts again; undefined when none. */
  use(token: string): Session | undefined {
    this.expire()
    const session = this.byToken.get(token)
    if (session !== undefined) session.lastUsed = this.now()
    return session
  }

  find(id: string): Session | undefined {
    this.expire()
    return [...this.byToken.values()].find((session) => session.id === id)
  }

  delete(id: string): boolean {
    const session = this.find(id)
    if (session === undefined) return false
    this.byToken.delete(session.token)
    return true
  }

  ids(): Array<string> {
    this.expire()
    return [...this.byToken.values()].map((session) => session.id)
  }

  private expire(): void {
    const cutoff = this.now() - this.timeoutMs
    for (const [token, session] of this.byToken) {
      if (session.lastUsed <= cutoff) this.byToken.delete(token)
    }
  }
}
