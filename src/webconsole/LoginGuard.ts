import { createHash, timingSafeEqual } from "node:crypto"

/**
 * Compares a password a client sent with the expected one in constant time. Both are hashed
 * first, so neither the content nor the length of the expected password leaks through timing.
 */
export const passwordMatches = (given: string, expected: string): boolean =>
  timingSafeEqual(
    createHash("sha256").update(given, "utf8").digest(),
    createHash("sha256").update(expected, "utf8").digest()
  )

export interface FailureLimit {
  /** Failed logins allowed within `windowMs` before every login is rejected. */
  readonly maxFailures: number
  readonly windowMs: number
}

/**
 * 10 failures a minute (14,400 a day): plenty for a person mistyping, and slow enough that
 * guessing a generated 8-character password takes millions of years on average.
 */
export const defaultFailureLimit: FailureLimit = { maxFailures: 10, windowMs: 60_000 }

/**
 * Counts failed logins over a sliding window, for the whole service rather than per client
 * address: behind a container's port mapping every client can share one address.
 */
export class FailureLimiter {
  private failures: Array<number> = []
  private total = 0

  constructor(
    private readonly limit: FailureLimit = defaultFailureLimit,
    private readonly now: () => number = Date.now
  ) {}

  /** Milliseconds until a login may be tried again, or 0 when one may be tried now. */
  retryAfterMs(): number {
    this.forgetOld()
    if (this.failures.length < this.limit.maxFailures) return 0
    const oldest = this.failures[0] ?? this.now()
    return Math.max(1, oldest + this.limit.windowMs - this.now())
  }

  /** Records a failure; returns how many there were since the service started. */
  recordFailure(): number {
    this.forgetOld()
    this.failures.push(this.now())
    this.total += 1
    return this.total
  }

  private forgetOld(): void {
    const cutoff = this.now() - this.limit.windowMs
    while ((this.failures[0] ?? Number.POSITIVE_INFINITY) <= cutoff) this.failures.shift()
  }
}
