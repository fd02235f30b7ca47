/**
 * Notices a connection on which no byte has moved for a while, from a count of its bytes read at
 * each of the router's sweeps: nothing is done per byte or per chunk.
 */
export class IdleWatch {
  private bytes = -1
  private since = 0

  /** How long (on the sweep's clock) `bytes` has stayed as it is now. */
  idleFor(bytes: number, now: number): number {
    if (bytes !== this.bytes) {
      this.bytes = bytes
      this.since = now
    }
    return now - this.since
  }
}
