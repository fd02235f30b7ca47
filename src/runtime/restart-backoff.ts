/** How soon a crashed process is started again. */
export interface BackoffPolicy {
  /** Delay of the second restart; each later one doubles it. The first restart is at once. */
  initialMs: number
  maxMs: number
  /** A process that stayed up this long counts as healthy: its next crash restarts at once again. */
  resetAfterMs: number
}

/** `dev start --restart`: at once, then 1 s, 2 s, 4 s … capped at 30 s; reset after 60 s up. */
export const LOCAL_BACKOFF: BackoffPolicy = {initialMs: 1000, maxMs: 30_000, resetAfterMs: 60_000}

/** Tracks one process's consecutive crashes and says how long to wait before the next start. */
export class RestartBackoff {
  private attempts = 0

  constructor(private readonly policy: BackoffPolicy) {}

  /** The delay before restarting a process that ran for `uptimeMs`; counts the attempt. */
  next(uptimeMs: number): {delayMs: number; attempt: number} {
    if (uptimeMs >= this.policy.resetAfterMs) this.attempts = 0
    const delayMs = this.attempts === 0 ? 0 : Math.min(this.policy.maxMs, this.policy.initialMs * 2 ** (this.attempts - 1))
    this.attempts += 1
    return {delayMs, attempt: this.attempts}
  }

  reset(): void {
    this.attempts = 0
  }
}
