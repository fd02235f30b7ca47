import type {Backend} from './backend.js'

/**
 * The dynos one request could not connect to: each is passed over by this request and, for
 * `quarantineMs`, by the app's next ones (see Balancer), and when none is left the code says why:
 * H19 when one at least did not accept in time, H21 when they all refused.
 */
export class UnreachableDynos {
  readonly tried = new Set<Backend>()
  private timedOut = false

  constructor(private readonly quarantineMs: number) {}

  add(backend: Backend, why: 'refused' | 'timed-out'): void {
    backend.quarantine(this.quarantineMs)
    this.tried.add(backend)
    this.timedOut ||= why === 'timed-out'
  }

  get code(): 'H19' | 'H21' {
    return this.timedOut ? 'H19' : 'H21'
  }
}
