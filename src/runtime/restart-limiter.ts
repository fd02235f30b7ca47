/** Allows at most `max` events in any `windowMs`: the loop breaker of `dev start --watch`. */
export class RestartLimiter {
  private readonly times: number[] = []

  constructor(
    private readonly max = 10,
    private readonly windowMs = 60_000,
  ) {}

  /** Records an event at `now` if allowed; false when it would be one too many. */
  tryRecord(now = Date.now()): boolean {
    while (this.times.length > 0 && now - this.times[0]! >= this.windowMs) this.times.shift()
    if (this.times.length >= this.max) return false
    this.times.push(now)
    return true
  }
}
