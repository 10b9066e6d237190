/**
 * TokenBucket: client-go's flowcontrol token bucket on a caller-supplied clock (milliseconds),
 * so Effect's Clock, and TestClock in tests, drives it. Used for the per-object spam filter
 * (burst 25, one token per 5 min) and the recorder's global request rate. Plain and
 * synchronous; may import nothing.
 */
export class TokenBucket {
  private tokens: number
  private last: number
  readonly burst: number
  /** Milliseconds per token. */
  readonly refillMs: number

  constructor(burst: number, refillMs: number, now: number) {
    this.burst = burst
    this.refillMs = refillMs
    this.tokens = burst
    this.last = now
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + (now - this.last) / this.refillMs)
      this.last = now
    }
  }

  /** Takes a token if one is there (client-go TryAccept). */
  tryTake(now: number): boolean {
    this.refill(now)
    if (this.tokens >= 1) {
      this.tokens -= 1
      return true
    }
    return false
  }

  /** Milliseconds until a token will be there (0 = now). */
  waitMs(now: number): number {
    this.refill(now)
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) * this.refillMs)
  }

  /** Reserves a token now, going into debt; returns how long the caller must wait before using it. */
  reserve(now: number): number {
    this.refill(now)
    this.tokens -= 1
    return this.tokens >= 0 ? 0 : Math.ceil(-this.tokens * this.refillMs)
  }
}
