import {connect, type Socket} from 'node:net'

import type {Backend} from './backend.js'

/** What a connection tells the request using it. */
export interface Exchange {
  /** The TCP connection is up (at once for a kept-alive one). */
  connected(): void
  data(chunk: Buffer): void
  /** The connection is gone: the dyno closed it, or it failed with `error` (ETIMEDOUT: not accepted in time). Told once. */
  lost(error: NodeJS.ErrnoException | undefined): void
}

/** How often idle connections past their time are closed. */
const SWEEP_MS = 1000

/**
 * One TCP connection to a dyno, used by one request at a time. Its listeners are set once, not per
 * request: each request takes it with `use` and gives it back with `release` when its answer has
 * all come.
 */
export class UpstreamConnection {
  /** Taken from the pool: the dyno may have closed it meanwhile, so a request lost on it may be sent again. */
  reused = false
  private exchange?: Exchange
  private idleSince = 0
  private idleLimitMs = 0
  private error?: NodeJS.ErrnoException
  private gone = false
  private established = false

  /** The dyno's generation when this was opened (see Backend.dropConnections). */
  readonly generation: number
  /** How the pool files it: the dyno's origin when this was opened. */
  readonly key: string

  constructor(
    readonly socket: Socket,
    private readonly pool: UpstreamPool,
    readonly backend: Backend,
  ) {
    this.generation = backend.generation
    this.key = backend.origin
    socket.on('connect', () => {
      this.established = true
      // The connect timeout is done with; an idle kept-alive connection has no timeout of its own.
      socket.setTimeout(0)
      this.exchange?.connected()
    })
    // Not accepted within the pool's connect timeout (the dyno's listen backlog full): given up.
    socket.once('timeout', () => {
      this.error ??= Object.assign(new Error('the dyno did not accept the connection in time'), {code: 'ETIMEDOUT'})
      this.destroy()
    })
    socket.on('data', (chunk: Buffer) => {
      // Bytes from an idle connection answer nothing: it cannot be trusted with a request.
      if (this.exchange === undefined) this.destroy()
      else this.exchange.data(chunk)
    })
    socket.on('error', (error: NodeJS.ErrnoException) => (this.error ??= error))
    // The dyno's end: the connection is out of the pool at once ('close' follows, a turn or more later).
    socket.on('end', () => this.onClose())
    socket.on('close', () => this.onClose())
  }

  /** Starts a request on this connection. */
  use(exchange: Exchange): void {
    this.exchange = exchange
    if (this.established) exchange.connected()
  }

  /** Whether the TCP handshake completed (false for one the dyno refused). */
  get connected(): boolean {
    return this.established
  }

  /** The request is done with it: kept for the next one for up to `keepMs` (0: closed now). */
  release(keepMs: number): void {
    this.exchange = undefined
    if (this.gone || keepMs <= 0 || this.socket.destroyed || this.generation !== this.backend.generation) return this.destroy()
    if (this.socket.isPaused()) this.socket.resume()
    this.idleSince = Date.now()
    this.idleLimitMs = keepMs
    this.pool.keep(this)
  }

  /** Whether it cannot take a request: closed or closing, or idle past its time (the dyno may be closing it). */
  stale(now: number): boolean {
    return this.gone || this.socket.destroyed || now - this.idleSince >= this.idleLimitMs
  }

  /** Closed now, and out of the pool now (its 'close' comes a turn later). */
  destroy(): void {
    this.socket.destroy()
    this.onClose()
  }

  private onClose(): void {
    if (this.gone) return
    this.gone = true
    this.pool.forget(this)
    const exchange = this.exchange
    this.exchange = undefined
    exchange?.lost(this.error)
  }
}

/**
 * Kept-alive connections to the dynos, most recently used first (warm, and the others age out),
 * so most requests skip the TCP handshake. Idle ones are closed after `idleMs`, or sooner when the
 * dyno's `Keep-Alive: timeout` says it closes them sooner.
 */
export class UpstreamPool {
  private readonly idle = new Map<string, UpstreamConnection[]>()
  private readonly open = new Set<UpstreamConnection>()
  private sweeper?: NodeJS.Timeout

  constructor(
    private readonly idleMs: number,
    /** A new connection the dyno has not accepted by then is given up (ETIMEDOUT). */
    private readonly connectTimeoutMs: number,
    private readonly maxIdlePerDyno = 1024,
  ) {}

  /** A connection to `backend`: a kept-alive one if there is one, else a new one (connecting). */
  take(backend: Backend): UpstreamConnection {
    const idle = this.idle.get(backend.origin)
    if (idle !== undefined && idle.length > 0) {
      const now = Date.now()
      for (let connection = idle.pop(); connection !== undefined; connection = idle.pop()) {
        if (!connection.stale(now)) {
          connection.reused = true
          return connection
        }
        connection.destroy()
      }
    }
    const connection = new UpstreamConnection(connect({host: backend.host, port: backend.port, noDelay: true, timeout: this.connectTimeoutMs}), this, backend)
    this.open.add(connection)
    backend.pools.add(this)
    return connection
  }

  /** Closes the idle connections to `backend` (its process stopping, or one of them found dead). */
  closeIdle(backend: Backend): void {
    for (const idle of this.idle.values()) for (const connection of [...idle]) if (connection.backend === backend) connection.destroy()
  }

  /** How long a connection may idle, given what the dyno said of its own keep-alive timeout. */
  keepMs(dynoIdleTimeoutMs: number | undefined): number {
    // A second's margin, so a request is never sent on a connection the dyno is closing.
    return dynoIdleTimeoutMs === undefined ? this.idleMs : Math.min(this.idleMs, dynoIdleTimeoutMs - 1000)
  }

  /** Closes every connection, idle or in use. */
  destroy(): void {
    clearInterval(this.sweeper)
    this.sweeper = undefined
    for (const connection of this.open) connection.destroy()
    this.idle.clear()
  }

  /** A connection back from a request, kept for the next. */
  keep(connection: UpstreamConnection): void {
    let idle = this.idle.get(connection.key)
    if (idle === undefined) this.idle.set(connection.key, (idle = []))
    if (idle.length >= this.maxIdlePerDyno) return connection.destroy()
    idle.push(connection)
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref()
  }

  /** A connection that has closed. */
  forget(connection: UpstreamConnection): void {
    this.open.delete(connection)
    const idle = this.idle.get(connection.key)
    const at = idle?.indexOf(connection) ?? -1
    if (at !== -1) idle!.splice(at, 1)
    if (idle?.length === 0) this.idle.delete(connection.key)
  }

  private sweep(): void {
    const now = Date.now()
    for (const idle of this.idle.values()) for (const connection of [...idle]) if (connection.stale(now)) connection.destroy()
    if (this.idle.size === 0) {
      clearInterval(this.sweeper)
      this.sweeper = undefined
    }
  }
}
