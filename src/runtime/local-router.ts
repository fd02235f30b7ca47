import {Backend} from '../router/backend.js'
import {Balancer} from '../router/balancer.js'
import type {RoutedApp} from '../router/router.js'
import {waitForAccept} from './port-probe.js'
import type {DynoEvent, DynoSpec} from './supervisor.js'

interface LocalWeb {
  backend: Backend
  /** stopping: told to stop (dev stop, dev restart, Ctrl-C), and expected back unless dev is stopping. */
  state: 'starting' | 'up' | 'stopping' | 'down'
  boot?: AbortController
}

/**
 * The local web processes as the router (`dev start --router`) and `dev ps` see them. A process is
 * up once it accepts on its PORT (requests wait while it boots, as on a host); one that has exited
 * is down. Every Host goes to the app.
 */
export class LocalRoutes {
  private readonly webs = new Map<string, LocalWeb>()
  /** dev start is stopping: a web process told to stop is not coming back. */
  private stopping = false
  /** Told when a web process is found accepting (ps shows it up from then on). */
  private readonly onUp: (name: string) => void
  readonly routed: RoutedApp

  constructor(
    specs: readonly DynoSpec[],
    {root, log, timeoutMs = 30_000, onUp = () => {}}: {root: string; log: (line: string) => void; timeoutMs?: number; onUp?: (name: string) => void},
  ) {
    this.onUp = onUp
    this.setFormation(specs)
    this.routed = {
      backends: () => [...this.webs.values()].filter((web) => web.state === 'up').map((web) => web.backend),
      whyNoBackend: () => {
        const webs = [...this.webs.values()]
        if (webs.length === 0) return 'none'
        // One restarting is as good as one booting: requests wait for it rather than get H10; not once dev is stopping.
        if (webs.some((web) => web.state === 'starting' || (web.state === 'stopping' && !this.stopping))) return 'starting'
        return this.stopping ? 'none' : 'crashed'
      },
      maintenance: () => false,
      firstByteTimeoutMs: () => timeoutMs,
      releaseDir: () => root,
      balancer: new Balancer(),
      log,
    }
  }

  /** The web processes to route to (a reload under --watch may bring other ones, or other ports). */
  setFormation(specs: readonly DynoSpec[]): void {
    const names = new Set<string>()
    for (const spec of specs) {
      if (spec.type !== 'web' || spec.port === undefined) continue
      names.add(spec.name)
      const known = this.webs.get(spec.name)
      if (known?.backend.port === spec.port) continue
      known?.boot?.abort()
      known?.backend.dropConnections()
      this.webs.set(spec.name, {backend: new Backend(spec.name, spec.port), state: 'down'})
    }
    for (const [name, web] of this.webs) {
      if (names.has(name)) continue
      web.boot?.abort()
      // Out of the formation (scaled down, or gone in a reload): its SIGTERM follows, and no connection of the router's may hold it open.
      web.backend.dropConnections()
      this.webs.delete(name)
    }
  }

  /** Follows the supervisor: a started web process boots, one told to stop is stopping, one that exited by itself is down. */
  onEvent(event: DynoEvent): void {
    if (event.kind === 'signalling' && event.signal === 'SIGTERM') {
      for (const name of event.dynos) {
        const web = this.webs.get(name)
        // One that exited by itself (its leftover processes are being cleaned up) stays down.
        if (web === undefined || web.state === 'down') continue
        web.boot?.abort()
        web.state = 'stopping'
        // Its answers in flight finish; no connection of the router's then keeps its server from closing.
        web.backend.dropConnections()
      }
      return
    }
    if (event.kind !== 'started' && event.kind !== 'exited' && event.kind !== 'spawn-failed') return
    const web = this.webs.get(event.dyno)
    if (web === undefined) return
    web.boot?.abort()
    if (event.kind !== 'started') {
      web.state = event.kind === 'exited' && event.stopping ? 'stopping' : 'down'
      return
    }
    web.state = 'starting'
    const boot = new AbortController()
    web.boot = boot
    // No boot limit locally (Foreman has none, and nothing kills a slow starter): it is `starting`
    // until it accepts or exits, and requests wait for it up to the request timeout (H20).
    void waitForAccept(web.backend.port, Infinity, boot.signal).then((address) => {
      if (boot.signal.aborted) return
      if (address === undefined) {
        web.state = 'down'
        return
      }
      web.backend.host = address
      web.state = 'up'
      this.onUp(event.dyno)
    })
  }

  /** True while the web process `name` accepts on its PORT (as far as the last check saw). */
  isUp(name: string): boolean {
    return this.webs.get(name)?.state === 'up'
  }

  /** dev is stopping: web processes told to stop are not waited for (requests get H14). */
  stop(): void {
    this.stopping = true
  }

  /** Stops every boot check (dev has stopped). */
  close(): void {
    this.stopping = true
    for (const web of this.webs.values()) web.boot?.abort()
  }
}
