import type {Backend} from './backend.js'

/**
 * Least outstanding requests, ties in turn: a slow dyno gets fewer new requests, and equal ones
 * share the load round robin. A quarantined dyno (it just refused a connection, or did not accept
 * one in time) is passed over while another can take the request, so one stuck dyno does not cost
 * every other request a failed connection first. One per app, so each app's turn is its own.
 */
export class Balancer {
  private turn = 0

  /** The backend to try next, skipping those in `tried`; undefined when none is left. */
  pick(backends: readonly Backend[], tried: ReadonlySet<Backend>): Backend | undefined {
    const chosen = this.choose(backends, tried, true)
    if (chosen !== undefined || !backends.some((backend) => backend.quarantinedUntil !== 0 && !tried.has(backend))) return chosen
    // Only quarantined ones left: one is tried all the same (a lone dyno back up is not kept waiting).
    return this.choose(backends, tried, false)
  }

  private choose(backends: readonly Backend[], tried: ReadonlySet<Backend>, skipQuarantined: boolean): Backend | undefined {
    // Two passes without an array of the tied ones: this runs once per request. Most requests find
    // no dyno quarantined, and read no clock.
    let now = 0
    let least = Infinity
    let ties = 0
    for (const backend of backends) {
      if (tried.has(backend)) continue
      if (skipQuarantined && backend.quarantinedUntil !== 0) {
        now ||= Date.now()
        if (backend.quarantinedUntil > now) continue
        backend.quarantinedUntil = 0
      }
      if (backend.active < least) {
        least = backend.active
        ties = 1
      } else if (backend.active === least) ties++
    }
    if (ties === 0) return undefined
    let chosen = this.turn++ % ties
    for (const backend of backends) {
      if (tried.has(backend) || (skipQuarantined && backend.quarantinedUntil !== 0)) continue
      if (backend.active === least && chosen-- === 0) return backend
    }
    return undefined
  }
}
