import type {Backend} from './backend.js'

/**
 * Least outstanding requests, ties in turn: a slow dyno gets fewer new requests, and equal ones
 * share the load round robin. One per app, so each app's turn is its own.
 */
export class Balancer {
  private turn = 0

  /** The backend to try next, skipping those in `tried`; undefined when none is left. */
  pick(backends: readonly Backend[], tried: ReadonlySet<Backend>): Backend | undefined {
    let least = Infinity
    let tied: Backend[] = []
    for (const backend of backends) {
      if (tried.has(backend)) continue
      if (backend.active < least) {
        least = backend.active
        tied = [backend]
      } else if (backend.active === least) tied.push(backend)
    }
    if (tied.length === 0) return undefined
    return tied[this.turn++ % tied.length]
  }
}
