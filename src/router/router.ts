import {connect, createServer, type AddressInfo, type Server, type Socket} from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'

import type {Backend} from './backend.js'
import type {Balancer} from './balancer.js'
import {ClientConnection, type ClientHandlers, type ConnectionLimits} from './client-connection.js'
import type {ClientExchange} from './client-exchange.js'
import {IdleWatch} from './idle-watch.js'
import type {RequestHead} from './request-reader.js'
import {sendRequest} from './send-request.js'
import {forwardedHead, peerAddress, requestIdOf, type ClientSide} from './forwarded-headers.js'
import {errorPage, NO_SUCH_APP_PAGE, PLATFORM_ERROR_PAGE, type RouterCode} from './router-errors.js'
import {routerLogLine, type RoutedRequest} from './router-log-line.js'
import {UnreachableDynos} from './unreachable-dynos.js'
import {UpstreamPool} from './upstream-pool.js'

/** One app behind the router, asked afresh for each request (a switch changes it between two). */
export interface RoutedApp {
  /** The web dynos that take new requests now: up, of the current release, not draining. */
  backends(): readonly Backend[]
  /** Why no dyno takes requests: some are starting (the request waits), all crashed (H10), or there are none (H14). */
  whyNoBackend(): 'starting' | 'crashed' | 'none'
  maintenance(): boolean
  /** No first byte from the dyno within this long: H12. Also how long a request waits for a booting app (H20). */
  firstByteTimeoutMs(): number
  /** An answer under way, or an open WebSocket, on which no byte moves for this long is cut: H15 (without it, the router's own window). */
  idleTimeoutMs?(): number
  /** Where the app's `error.html` and `maintenance.html` would be (its current release). */
  releaseDir(): string | undefined
  balancer: Balancer
  /** One router line into the app's log stream. */
  log(line: string): void
}

/** A request as it arrives: the app its Host names (none for an unknown Host), who sent it, and its log record so far. */
interface Arrival {
  app: RoutedApp | undefined
  client: ClientSide
  record: RoutedRequest
}

/** Which app a Host header names; undefined for a Host no app answers to. */
export type RouteTable = (host: string) => RoutedApp | undefined

/**
 * Idle connections to dynos are dropped after this long: before the 5 s after which Node servers
 * close theirs, so a request is never sent on a connection the dyno is closing.
 */
const IDLE_UPSTREAM_MS = 4000

/** The most of a dyno's answer to a WebSocket handshake the router reads before passing it on. */
const MAX_HANDSHAKE_BYTES = 64 * 1024

const NONE_TRIED: ReadonlySet<Backend> = new Set()

/**
 * A client that takes none of its answer while the router holds the dyno back for it is waited for
 * this long at least before H15: the kernel frees a send buffer in large steps, so a slow but
 * steady reader can show no progress for well over a minute.
 */
const SLOW_CLIENT_MS = 5 * 60_000

/** A dyno that refused a connection, or did not accept one in time, is passed over this long while others can serve (Heroku's quarantine). */
const QUARANTINE_MS = 5000

/** How often a request for an app whose dynos are starting looks for one that is up. */
const BOOT_POLL_MS = 100

/**
 * A dyno that has not accepted a connection within this long (its listen backlog full: it is
 * stuck or swamped) is skipped like one that refused, as Heroku's router does.
 */
const CONNECT_TIMEOUT_MS = 5000

/**
 * A client that sends nothing of its request's body for this long is given up on (H28, as
 * Heroku's router does). An upload has no limit on its whole length, only on its pauses.
 */
const CLIENT_IDLE_MS = 55_000

/** A client's request head (line and headers) must have all come within this long (Node's default). */
const HEADERS_TIMEOUT_MS = 60_000

/** An idle kept-alive client connection is closed after this long (what its answers' `Keep-Alive: timeout` says). */
const KEEP_ALIVE_MS = 5000

/**
 * An answer under way, or an open WebSocket, on which no byte moves for this long is cut (H15), as
 * Heroku's router does: a long-lived stream (SSE, a socket) stays open by sending something, a
 * comment or a ping, within it. Apps may set their own (RoutedApp.idleTimeoutMs).
 */
const IDLE_TIMEOUT_MS = 55_000

/** The most often the open client connections are checked against their timeouts. */
const MAX_SWEEP_MS = 1000

/**
 * The HTTP front door: picks the app by Host, the dyno by least outstanding requests (a dyno that
 * refuses the connection is skipped while nothing was sent to it), forwards with X-Request-Id,
 * X-Forwarded-* and Via, streams the answer back as it comes, proxies WebSocket upgrades, and
 * answers for the app with Heroku's codes (H10, H12, H13, H14, H80…) when it cannot. One log line
 * per request goes to the app's stream.
 */
export class Router {
  private readonly server: Server
  /** Kept-alive connections to the dynos, so a request does not pay for a TCP handshake. */
  private readonly upstream: UpstreamPool
  /** Open client connections (not tunnels), timed by one sweep rather than timers per request. */
  private readonly connections = new Set<ClientConnection>()
  private readonly limits: ConnectionLimits
  private sweeper?: NodeJS.Timeout
  private readonly handlers: ClientHandlers
  /** Open WebSocket tunnels (client side), with their idle watch once the dyno has switched protocols. */
  private readonly tunnels = new Map<Socket, {watch: IdleWatch; idleMs: number; idle: () => void} | undefined>()
  private port = 0

  /** Until this settles (an agent restoring its apps after a restart), requests wait instead of finding no app. */
  private ready?: Promise<void>
  /** Handing over to another process: every answer from now on closes its connection. */
  private draining = false
  /** Once it stops accepting: settles when the last open connection has closed. */
  private allClosed?: Promise<void>

  private readonly connectTimeoutMs: number
  private readonly clientIdleMs: number
  private readonly onError: (error: unknown) => void
  private readonly quarantineMs: number

  constructor(
    private readonly table: RouteTable,
    {
      ready,
      connectTimeoutMs = CONNECT_TIMEOUT_MS,
      clientIdleMs = CLIENT_IDLE_MS,
      headersTimeoutMs = HEADERS_TIMEOUT_MS,
      keepAliveMs = KEEP_ALIVE_MS,
      idleConnectionMs = IDLE_TIMEOUT_MS,
      quarantineMs = QUARANTINE_MS,
      slowClientMs = SLOW_CLIENT_MS,
      onError = reportError,
    }: {
      ready?: Promise<void>
      connectTimeoutMs?: number
      clientIdleMs?: number
      headersTimeoutMs?: number
      keepAliveMs?: number
      /** The idle window of the router's own answers, and the finest the sweep looks (apps' own windows are whole seconds). */
      idleConnectionMs?: number
      quarantineMs?: number
      slowClientMs?: number
      /** A fault of the router's own while it served a request (the client got H99). */
      onError?: (error: unknown) => void
    } = {},
  ) {
    this.connectTimeoutMs = connectTimeoutMs
    this.clientIdleMs = clientIdleMs
    this.onError = onError
    this.quarantineMs = quarantineMs
    this.upstream = new UpstreamPool(IDLE_UPSTREAM_MS, connectTimeoutMs)
    const settled = () => {
      this.ready = undefined
    }
    this.ready = ready?.then(settled, settled)
    // No cap on a whole request's time (it would cut long uploads): the client's pauses are
    // limited instead (clientIdleMs), and its head to headersTimeoutMs.
    this.limits = {keepAliveMs, headersTimeoutMs, idleConnectionMs, slowClientMs}
    this.handlers = {
      request: (exchange) => void this.handle(exchange),
      upgrade: (request, socket, head) => void this.tunnel(request, socket, head),
      closing: () => this.draining,
      failed: (error) => this.onError(error),
    }
    // Requests are read from raw sockets (RequestReader), not by node:http: its request and
    // response objects cost more CPU per request than all of the router's own work.
    this.server = createServer({noDelay: true, allowHalfOpen: true}, (socket) => {
      const connection = new ClientConnection(socket, this.handlers, this.limits, (gone) => this.connections.delete(gone))
      this.connections.add(connection)
    })
  }

  /** Listens on `port` (0: any free one) and resolves to the port. */
  listen(port: number, host?: string): Promise<number> {
    return this.listenWith((done) => this.server.listen(port, host, done))
  }

  /** Accepts on a socket already listening, handed over by the agent this one replaces. */
  listenOn(handle: object): Promise<number> {
    return this.listenWith((done) => this.server.listen(handle, done))
  }

  private async listenWith(listen: (done: () => void) => void): Promise<number> {
    this.allClosed = undefined
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      listen(() => {
        this.server.off('error', reject)
        resolve()
      })
    })
    this.port = (this.server.address() as AddressInfo).port
    const {headersTimeoutMs, keepAliveMs, idleConnectionMs} = this.limits
    const everyMs = Math.max(10, Math.min(MAX_SWEEP_MS, headersTimeoutMs / 4, keepAliveMs / 4, idleConnectionMs / 4))
    this.sweeper ??= setInterval(() => {
      const now = Date.now()
      for (const connection of this.connections) connection.sweep(now)
      // A tunnel's bytes both ways, read off its client socket.
      for (const [socket, open] of this.tunnels) if (open !== undefined && open.watch.idleFor(socket.bytesRead + socket.bytesWritten, now) >= open.idleMs) open.idle()
    }, everyMs).unref()
    return this.port
  }

  /** The listening socket's handle, to hand over to a successor (as node:cluster passes them). */
  listeningHandle(): object {
    return (this.server as unknown as {_handle: object})._handle
  }

  /**
   * Stops taking connections. A successor holding the same socket goes on accepting; open
   * connections stay (a client may be sending its next request on an idle one at this very moment).
   */
  stopAccepting(): void {
    this.allClosed ??= new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  /**
   * After a successor has taken over: stops accepting, answers whatever the open connections still
   * ask with `Connection: close` (the client's next request goes to the successor), and closes for
   * good once they are gone (idle ones at the keep-alive timeout) or after `drainMs`.
   */
  async handOver(drainMs: number): Promise<void> {
    this.draining = true
    this.stopAccepting()
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.allClosed, new Promise((resolve) => (timer = setTimeout(resolve, drainMs)))])
    clearTimeout(timer)
    await this.closeConnections()
  }

  /** Stops taking connections and closes the open ones. */
  async close(): Promise<void> {
    this.stopAccepting()
    const closed = this.allClosed
    await Promise.all([closed, this.closeConnections()])
  }

  /** Every open connection, on both sides, closed at once. */
  private async closeConnections(): Promise<void> {
    clearInterval(this.sweeper)
    this.sweeper = undefined
    for (const connection of this.connections) connection.destroy()
    for (const tunnel of this.tunnels.keys()) tunnel.destroy()
    this.upstream.destroy()
  }

  /** One request: routed, or answered for the app; a fault of the router's own is H99, never the end of the process. */
  private async handle(exchange: ClientExchange): Promise<void> {
    let arrived: Arrival | undefined
    try {
      if (this.ready) await this.ready
      arrived = this.arrival(exchange.request, exchange.socket)
      await this.route(exchange, arrived)
    } catch (error) {
      this.platformError(error, arrived, () => send(exchange, 503, PLATFORM_ERROR_PAGE))
    }
  }

  /** A fault of the router's own: reported, the client answered by `answer` (it returns the body's size, if any), the app's log told H99. */
  private platformError(error: unknown, arrived: Arrival | undefined, answer: () => number | void): void {
    // Each step on its own: the client is answered whatever the report does, and the other way round.
    let bytes: number | void = 0
    try {
      bytes = answer()
    } catch {
      // Nothing more can be sent: the connection goes when the client's does.
    }
    try {
      this.onError(error)
      if (arrived?.app === undefined) return
      Object.assign(arrived.record, {status: 503, bytes: bytes ?? 0, serviceMs: Date.now() - arrived.client.startedAt})
      arrived.app.log(routerLogLine(arrived.record, 'H99'))
    } catch {
      // The report itself failed (the app's log is the fault): nothing more can be told.
    }
  }

  private async route(exchange: ClientExchange, {app, client, record}: Arrival): Promise<void> {
    const startedAt = client.startedAt
    if (app === undefined) {
      send(exchange, 404, NO_SUCH_APP_PAGE)
      return
    }
    if (app.maintenance()) return this.answer(app, exchange, record, 'H80', startedAt)
    // Made only when a dyno refuses: most requests go to the first one picked.
    let unreachable: UnreachableDynos | undefined
    let resets = 0
    /** When the first try went to a dyno: a try after it gets what is left of the request timeout, not a new one. */
    let firstTry: number | undefined
    for (;;) {
      let backend = app.balancer.pick(app.backends(), unreachable?.tried ?? NONE_TRIED)
      if (backend === undefined && unreachable === undefined && app.whyNoBackend() === 'starting') backend = await this.waitForBoot(app, () => exchange.destroyed, startedAt)
      if (exchange.destroyed) {
        return this.answer(app, exchange, record, 'H27', startedAt)
      }
      if (backend === undefined) {
        const code = unreachable !== undefined ? unreachable.code : noBackendCode(app.whyNoBackend())
        return this.answer(app, exchange, record, code, startedAt)
      }
      firstTry ??= Date.now()
      const firstByteTimeoutMs = app.firstByteTimeoutMs() - (Date.now() - firstTry)
      if (firstByteTimeoutMs <= 0) {
        return this.answer(app, exchange, record, 'H12', startedAt)
      }
      const parts = {backend, exchange, record, startedAt, clientIdleMs: this.clientIdleMs, firstByteTimeoutMs, idleTimeoutMs: this.idleWindow(app), answer: (code: RouterCode) => this.answer(app, exchange, record, code, startedAt), log: (line: string) => app.log(line)}
      const outcome = await sendRequest(forwardedHead(exchange.request, client, backend.authority), this.upstream, parts)
      if (outcome === 'refused' || outcome === 'timed-out') (unreachable ??= new UnreachableDynos(this.quarantineMs)).add(backend, outcome)
      else if (outcome === 'reset') {
        // The dyno may have gone with its other kept-alive connections: the next try opens a new one.
        this.upstream.closeIdle(backend)
        // Once only: a dyno that keeps closing connections without answering gets H13.
        if (resets++ > 0) return this.answer(app, exchange, record, 'H13', startedAt)
      } else return
    }
  }

  /** A request as it arrives: the app its Host names, who sent it, and its log record so far. */
  private arrival(request: RequestHead, socket: Socket): Arrival {
    const host = hostOf(request.host)
    const client: ClientSide = {requestId: requestIdOf(request), clientIp: peerAddress(socket.remoteAddress), port: this.port, startedAt: Date.now()}
    const record: RoutedRequest = {method: request.method, path: request.target, host, requestId: client.requestId, fwd: client.clientIp, dyno: undefined, connectMs: 0, serviceMs: 0, status: 0, bytes: 0}
    return {app: this.table(host), client, record}
  }

  /** How long an answer under way, or a WebSocket, of `app` may move no byte (H15). */
  private idleWindow(app: RoutedApp): number {
    return app.idleTimeoutMs?.() ?? this.limits.idleConnectionMs
  }

  /** Waits (up to the first-byte timeout) for a dyno of an app whose dynos are booting. */
  private async waitForBoot(app: RoutedApp, gone: () => boolean, startedAt: number): Promise<Backend | undefined> {
    const deadline = startedAt + app.firstByteTimeoutMs()
    while (Date.now() < deadline && !gone()) {
      await sleep(BOOT_POLL_MS)
      const backend = app.balancer.pick(app.backends(), NONE_TRIED)
      if (backend !== undefined) return backend
      if (app.whyNoBackend() !== 'starting') return undefined
    }
    return undefined
  }

  /** The router answers for the app: an error (or maintenance) page, and the log line. */
  private async answer(app: RoutedApp, exchange: ClientExchange, record: RoutedRequest, code: RouterCode, startedAt: number): Promise<void> {
    // What the client waited since the request arrived, less a try's connect (as Attempt counts it).
    record.serviceMs = Math.max(0, Date.now() - startedAt - record.connectMs)
    const body = await errorPage(code, app.releaseDir())
    record.status = code === 'H27' ? 499 : code === 'H28' ? 408 : 503
    if (code !== 'H27') record.bytes = send(exchange, record.status, body, ['X-Request-Id', record.requestId, ...(code === 'H80' ? ['Retry-After', '60'] : [])])
    app.log(routerLogLine(record, code))
  }

  /** A WebSocket (or other upgrade): a byte tunnel to a dyno once it answers the handshake. */
  private async tunnel(request: RequestHead, socket: Socket, head: Buffer): Promise<void> {
    socket.on('error', () => {})
    let arrived: Arrival | undefined
    try {
      if (this.ready) await this.ready
      arrived = this.arrival(request, socket)
      await this.openTunnel(request, socket, head, arrived)
    } catch (error) {
      // Once a dyno has the handshake, what it has seen is unknown: the connection is cut.
      this.platformError(error, arrived, () => {
        if (!socket.destroyed && !this.tunnels.has(socket)) return refuse(socket, 503, PLATFORM_ERROR_PAGE)
        socket.destroy()
      })
    }
  }

  private async openTunnel(request: RequestHead, socket: Socket, head: Buffer, {app, client, record}: Arrival): Promise<void> {
    const startedAt = client.startedAt
    if (app === undefined) {
      refuse(socket, 404, NO_SUCH_APP_PAGE)
      return
    }
    const fail = async (code: RouterCode) => {
      record.status = 503
      record.bytes = refuse(socket, 503, await errorPage(code, app.releaseDir()))
      app.log(routerLogLine(record, code))
    }
    if (app.maintenance()) return fail('H80')
    const unreachable = new UnreachableDynos(this.quarantineMs)
    for (;;) {
      let backend = app.balancer.pick(app.backends(), unreachable.tried)
      // A handshake waits for booting (or, locally, restarting) dynos as a request does.
      if (backend === undefined && unreachable.tried.size === 0 && app.whyNoBackend() === 'starting') backend = await this.waitForBoot(app, () => socket.destroyed, startedAt)
      if (socket.destroyed) return
      if (backend === undefined) return fail(unreachable.tried.size > 0 ? unreachable.code : noBackendCode(app.whyNoBackend()))
      record.dyno = backend.name
      // Counted on the dyno while connecting, so a drain that starts meanwhile waits for it.
      backend.begin()
      const connecting = Date.now()
      const upstream = await connectTo(backend, this.connectTimeoutMs)
      if (typeof upstream === 'string') {
        backend.end()
        unreachable.add(backend, upstream)
        continue
      }
      if (socket.destroyed) {
        backend.end()
        upstream.destroy()
        return
      }
      // This try's connect, as for a request; the waits and tries before it count as service.
      record.connectMs = Date.now() - connecting
      this.tunnels.set(socket, undefined)
      socket.once('close', () => this.tunnels.delete(socket))
      backend.addTunnel(socket)
      backend.end()
      this.handshake(app, socket, upstream, backend, request, client, head, record)
      return
    }
  }

  /**
   * Passes the handshake to the dyno and its answer back. A 101 opens the tunnel both ways; any
   * other answer is passed back and the connection ends with it, so nothing the client sends later
   * reaches the dyno unrouted. No answer within the request timeout is H12; none at all, H13.
   */
  private handshake(app: RoutedApp, socket: Socket, upstream: Socket, backend: Backend, request: RequestHead, client: ClientSide, head: Buffer, record: RoutedRequest): void {
    /** Set once the router ends the client's connection itself (a page, or a passed-back answer). */
    let ending = false
    // Listeners first: whatever fails after this, the dyno's connection goes with the client's.
    upstream.on('error', () => {
      if (!ending) socket.destroy()
    })
    upstream.on('close', () => {
      if (!ending) socket.destroy()
    })
    socket.on('close', () => upstream.destroy())
    const idleMs = this.idleWindow(app)
    upstream.write(forwardedHead(request, client, backend.authority, {upgrade: true}), 'latin1')
    const routerAnswer = async (code: RouterCode) => {
      ending = true
      upstream.destroy()
      record.status = 503
      record.serviceMs = Date.now() - client.startedAt - record.connectMs
      record.bytes = refuse(socket, 503, await errorPage(code, app.releaseDir()))
      app.log(routerLogLine(record, code))
    }
    const timer = setTimeout(() => void routerAnswer('H12'), app.firstByteTimeoutMs())
    let answer = Buffer.alloc(0)
    const onEnd = () => {
      clearTimeout(timer)
      void routerAnswer('H13')
    }
    const onData = (chunk: Buffer) => {
      answer = Buffer.concat([answer, chunk])
      if (answer.indexOf('\r\n\r\n') === -1 && answer.length < MAX_HANDSHAKE_BYTES) return
      clearTimeout(timer)
      upstream.off('data', onData)
      upstream.off('end', onEnd)
      record.status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(answer.toString('latin1', 0, 16))?.[1] ?? 0)
      record.serviceMs = Date.now() - client.startedAt - record.connectMs
      record.bytes = answer.length
      app.log(routerLogLine(record))
      socket.write(answer)
      if (record.status !== 101) {
        // The dyno's answer (and any body) goes back, then the connection ends: nothing more is the dyno's to read.
        ending = true
        upstream.end()
      } else {
        // What the client sent after its handshake goes on only once the dyno has switched
        // protocols: a dyno that did not would read those bytes as requests no router saw.
        if (head.length > 0) upstream.write(head)
        socket.pipe(upstream)
        if (!socket.destroyed)
          this.tunnels.set(socket, {
            watch: new IdleWatch(),
            idleMs,
            idle: () => {
              this.tunnels.delete(socket)
              app.log(routerLogLine(record, 'H15'))
              socket.destroy()
            },
          })
      }
      upstream.pipe(socket)
    }
    upstream.on('data', onData)
    upstream.once('end', onEnd)
  }
}

/** Why no dyno can take a request, as Heroku names it: all crashed (H10), still booting (H20), none running (H14). */
function noBackendCode(why: ReturnType<RoutedApp['whyNoBackend']>): RouterCode {
  return why === 'crashed' ? 'H10' : why === 'starting' ? 'H20' : 'H14'
}

/** Where a fault of the router's own goes by default: stderr, where the agent's own errors go. */
function reportError(error: unknown): void {
  process.stderr.write(`router: internal error (the client got H99): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
}

/** The Host header without its port or a final dot, lower-cased (`Shop.Example.com.:8080` → `shop.example.com`). */
function hostOf(given: string | undefined): string {
  const host = (given ?? '').toLowerCase()
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1)
  const colon = host.indexOf(':')
  const name = colon === -1 ? host : host.slice(0, colon)
  // A fully qualified name (`shop.example.com.`) is the same name.
  return name.endsWith('.') ? name.slice(0, -1) : name
}

/** Answers with an HTML page; returns the body's size. A body still coming is not waited for: the connection ends with the answer. */
function send(exchange: ClientExchange, status: number, body: string, headers: string[] = []): number {
  if (exchange.headersSent) {
    exchange.destroy()
    return 0
  }
  const bytes = Buffer.from(body)
  exchange.writeHead(status, '', ['Content-Type', 'text/html; charset=utf-8', 'Content-Length', String(bytes.length), 'Cache-Control', 'no-store', ...headers], bytes.length)
  exchange.end(bytes)
  return bytes.length
}

/** An HTTP answer written on a raw (upgrade) socket, which is then closed. */
function refuse(socket: Socket, status: number, body: string): number {
  const bytes = Buffer.byteLength(body)
  const reason = status === 404 ? 'Not Found' : 'Service Unavailable'
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: ${bytes}\r\nConnection: close\r\n\r\n${body}`)
  return bytes
}

/** A TCP connection to the dyno, or why there is none: it refused (or failed), or did not accept within `timeoutMs`. */
function connectTo(backend: Backend, timeoutMs: number): Promise<Socket | 'refused' | 'timed-out'> {
  return new Promise((resolve) => {
    const upstream = connect({host: backend.host, port: backend.port, noDelay: true, timeout: timeoutMs})
    upstream.once('timeout', () => {
      upstream.destroy()
      resolve('timed-out')
    })
    upstream.once('connect', () => {
      upstream.setTimeout(0)
      upstream.removeAllListeners('error')
      resolve(upstream)
    })
    upstream.once('error', () => resolve('refused'))
  })
}
