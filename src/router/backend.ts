import type {Duplex} from 'node:stream'

/**
 * One web dyno as the router sees it: where it listens, how many requests it is serving now (for
 * least-outstanding balancing), and its open WebSocket tunnels, so a switch can drain it before
 * it is stopped.
 */
export class Backend {
  /** Requests sent and not yet answered in full. */
  active = 0
  private readonly tunnels = new Set<Duplex>()
  private readonly idleWaiters = new Set<() => void>()

  /** `http://host:port`: how connections to it are pooled; made when the address changes, not per request. */
  origin = ''
  /** `host:port` as a Host header names it (what an HTTP/1.0 request without one is given). */
  authority = ''
  private address = ''

  constructor(
    /** The dyno's name in router log lines (`web.2`). */
    readonly name: string,
    readonly port: number,
    host = '127.0.0.1',
  ) {
    this.host = host
  }

  /** The address the dyno accepts on (127.0.0.1, or ::1 for a dyno that listens on IPv6 only). */
  get host(): string {
    return this.address
  }

  set host(host: string) {
    this.address = host
    this.authority = `${host.includes(':') ? `[${host}]` : host}:${this.port}`
    this.origin = `http://${this.authority}`
  }

  /**
   * Until then (epoch ms; 0: not) new requests go to other dynos when there are any: it refused a
   * connection, or did not accept one in time (see Balancer).
   */
  quarantinedUntil = 0

  quarantine(ms: number): void {
    this.quarantinedUntil = Date.now() + ms
  }

  /**
   * Bumped when the dyno's process is stopping: a connection opened before is not kept for another
   * request once its answer is done, so nothing of the router's holds the process open.
   */
  generation = 0
  /** The pools holding idle connections to it (the router's), to close them when it stops. */
  readonly pools = new Set<{closeIdle(backend: Backend): void}>()

  /** The process is stopping (or restarting): idle connections to it are closed, busy ones not kept. */
  dropConnections(): void {
    this.generation++
    for (const pool of this.pools) pool.closeIdle(this)
  }

  begin(): void {
    this.active++
  }

  end(): void {
    this.active--
    this.wakeIfIdle()
  }

  /** A WebSocket (or other upgraded) connection through this dyno, open until `client` closes. */
  addTunnel(client: Duplex): void {
    this.tunnels.add(client)
    client.once('close', () => {
      this.tunnels.delete(client)
      this.wakeIfIdle()
    })
  }

  get idle(): boolean {
    return this.active === 0 && this.tunnels.size === 0
  }

  /**
   * Resolves once the dyno has finished its requests and its tunnels have closed, or at `deadlineMs`
   * (epoch ms): then the tunnels still open are closed and requests still running are left to the
   * stop that follows. The caller has already taken the dyno out of rotation.
   */
  async drain(deadlineMs: number): Promise<void> {
    if (!this.idle) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer)
          this.idleWaiters.delete(done)
          resolve()
        }
        const timer = setTimeout(done, Math.max(0, deadlineMs - Date.now()))
        this.idleWaiters.add(done)
      })
    }
    const closing = [...this.tunnels].map((tunnel) => new Promise<void>((resolve) => {
      tunnel.once('close', () => resolve())
      tunnel.destroy()
    }))
    await Promise.all(closing)
  }

  private wakeIfIdle(): void {
    if (this.idle) for (const wake of [...this.idleWaiters]) wake()
  }
}
