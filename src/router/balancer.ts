import type {Backend} from './backend.js'

/**
 * Least outstanding requests, ties in turn: a slow dyno gets fewer new requests, and equal ones
 * share the load round robin. One per app, so each app's turn is its own.
 */
export class Balancer {
  private turn = 0

  /** The backend to try next, skipping those in `tried`; undefined when none is left. */
  pick(backends: readonly Backend[], tried: ReadonlySet<Backend>): Backend | undefined {
    // Two passes without an array of the tied ones: this runs once per request.
    let least = Infinity
    let ties = 0
    for (const backend of backends) {
      if (tried.has(backend)) continue
      if (backend.active < least) {
        least = backend.active
        ties = 1
      } else if (backend.active === least) ties++
    }
    if (ties === 0) return undefined
    let chosen = this.turn++ % ties
    for (const backend of backends) if (!tried.has(backend) && backend.active === least && chosen-- === 0) return backend
    return undefined
  }
}
