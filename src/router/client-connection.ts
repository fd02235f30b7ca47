import {STATUS_CODES} from 'node:http'
import type {Socket} from 'node:net'

import {ClientExchange, type ExchangeConnection} from './client-exchange.js'
import {MalformedRequest, RequestReader, type RequestHead} from './request-reader.js'

/** What the router does with what a connection reads. */
export interface ClientHandlers {
  /** A request's head has come: answer it (its body is read when the exchange asks). */
  request(exchange: ClientExchange): void
  /** A protocol switch: the socket is the handler's from now on, with the bytes that came after the head. */
  upgrade(request: RequestHead, socket: Socket, head: Buffer): void
  /** Every answer from now on closes its connection. */
  closing(): boolean
  /** A fault of the router's own while reading a request (the client gets a 503 and the connection closes). */
  failed(error: unknown): void
}

/** The timeouts a connection keeps (checked by the router's sweep, not a timer per request). */
export interface ConnectionLimits {
  /** An idle kept-alive connection is closed after this long. */
  keepAliveMs: number
  /** A request's head (line and headers) must have all come within this long: else 408. */
  headersTimeoutMs: number
  /**
   * An answer under way that moves no byte for this long (the dyno sends nothing, or the client
   * reads nothing) is cut, H15: the router's own answers, and those of apps that say nothing else.
   */
  idleConnectionMs: number
  /** The least a client that takes none of its answer (the router holding the dyno back for it) is waited for. */
  slowClientMs: number
}

/** Pipelined bytes held past this (the client not waiting for answers) pause the connection. */
const MAX_HELD_BYTES = 64 * 1024

/**
 * After its last answer, a closing connection reads and drops what the client still sends (the
 * rest of an upload answered early), so the answer is not lost to a reset: until the client has
 * sent nothing for LINGER_MS, or for MAX_LINGER_MS at most.
 */
const LINGER_MS = 5000
const MAX_LINGER_MS = 60_000

/**
 * One client's TCP connection: its requests read one at a time (pipelined ones wait their turn),
 * each answered through a ClientExchange, kept alive between them, closed when an answer says so.
 * A malformed request gets its 4xx/5xx and the connection closes; a slow head gets 408.
 */
export class ClientConnection implements ExchangeConnection {
  private readonly reader: RequestReader
  private exchange?: ClientExchange
  /** Requests read so far: the sweep notices a new one by it. */
  private served = 0
  /** What the last sweep saw: `served` then, and since when (router clock) it has waited for a request. */
  private seen = -1
  private waitingSince = 0
  private headSince?: number
  /** Closing: the last answer is written, the client's further bytes are dropped (since when, on the sweep's clock). */
  private lingering = false
  private lingerSince?: number
  private lingerStart?: number
  /** The client sent something since the last sweep while lingering. */
  private lingerRead = false
  /** Paused because pipelined bytes piled up (not by an upload waiting for its dyno). */
  private heldPause = false
  private clientEnded = false
  readonly keepAliveSeconds: number
  readonly idleConnectionMs: number
  readonly slowClientMs: number

  constructor(
    readonly socket: Socket,
    private readonly handlers: ClientHandlers,
    private readonly limits: ConnectionLimits,
    private readonly gone: (connection: ClientConnection) => void,
  ) {
    this.keepAliveSeconds = Math.max(1, Math.floor(limits.keepAliveMs / 1000))
    this.idleConnectionMs = limits.idleConnectionMs
    this.slowClientMs = limits.slowClientMs
    this.reader = new RequestReader({
      head: (request) => this.onHead(request),
      data: (chunk) => this.exchange?.body?.data(chunk),
      end: () => {
        const exchange = this.exchange
        if (exchange === undefined) return
        exchange.complete = true
        exchange.body?.end()
      },
    })
    socket.on('data', this.onData)
    socket.on('end', this.onEnd)
    socket.on('error', noop)
    socket.on('close', this.onClose)
  }

  closing(): boolean {
    return this.handlers.closing()
  }

  readBody(): void {
    this.proceed()
  }

  answered(exchange: ClientExchange): void {
    if (exchange !== this.exchange) return
    if (!exchange.keepAlive || this.socket.destroyed) return this.close()
    this.exchange = undefined
    // An upload paused for its dyno may have ended with the client still paused: it reads again.
    if (this.socket.isPaused() && !this.heldPause) this.socket.resume()
    this.proceed()
  }

  /** The reader goes on with what it held; the connection reads again if it was paused for that. */
  private proceed(): void {
    this.read(() => this.reader.proceed())
    if (this.heldPause && this.reader.heldBytes <= MAX_HELD_BYTES) {
      this.heldPause = false
      this.socket.resume()
    }
    this.endIfStarved()
  }

  /**
   * After the client's end: once the reader needs bytes that will never come, the connection
   * ends (the requests before were all answered), or is cut (a request or body half sent).
   */
  private endIfStarved(): void {
    if (!this.clientEnded || !this.reader.wantsBytes || this.lingering) return
    if (this.exchange === undefined && !this.reader.readingHead) this.close()
    else this.socket.destroy()
  }

  /** Called by the router's sweep, `now` on its clock: closes connections idle, slow or lingering past their time. */
  sweep(now: number): void {
    if (this.lingering) {
      // Closed once the client has sent nothing for LINGER_MS (an upload still coming keeps it), or at most MAX_LINGER_MS.
      this.lingerStart ??= now
      if (this.lingerSince === undefined || this.lingerRead) this.lingerSince = now
      this.lingerRead = false
      if (now - this.lingerSince >= LINGER_MS || now - this.lingerStart >= MAX_LINGER_MS) this.socket.destroy()
      return
    }
    // Serving a request: its body's pauses are the upload's to time, its answer's the exchange's.
    if (this.exchange !== undefined) return this.exchange.sweep(now)
    if (this.seen !== this.served) {
      this.seen = this.served
      this.waitingSince = now
      this.headSince = undefined
    }
    if (this.reader.readingHead) {
      this.headSince ??= now
      if (now - this.headSince >= this.limits.headersTimeoutMs) this.refuse(408)
      // A kept connection is closed a second after the timeout its answers told, so a client never sends on one being closed.
    } else if (now - this.waitingSince >= (this.served === 0 ? this.limits.headersTimeoutMs : this.limits.keepAliveMs + Math.min(1000, this.limits.keepAliveMs))) this.socket.destroy()
  }

  /** Closed at once. */
  destroy(): void {
    this.socket.destroy()
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.lingering) {
      this.lingerRead = true
      return
    }
    this.read(() => this.reader.push(chunk))
    if (this.reader.heldBytes > MAX_HELD_BYTES && !this.lingering) {
      this.heldPause = true
      this.socket.pause()
    }
  }

  /** Runs the reader, answering a malformed request for the router. */
  private read(step: () => void): void {
    try {
      step()
    } catch (error) {
      if (error instanceof MalformedRequest) return this.refuse(error.status)
      this.handlers.failed(error)
      this.refuse(503)
    }
  }

  private onHead(request: RequestHead): void {
    this.served++
    if (request.upgrade) {
      // The socket leaves this connection for the tunnel, paused until the tunnel reads it.
      this.socket.off('data', this.onData)
      this.socket.off('end', this.onEnd)
      this.socket.off('close', this.onClose)
      this.socket.pause()
      this.gone(this)
      this.handlers.upgrade(request, this.socket, this.reader.takeHeld())
      return
    }
    this.exchange = new ClientExchange(request, this)
    this.handlers.request(this.exchange)
  }

  /** A request the router will not pass on: its status, then the connection closes. An answer under way is cut instead. */
  private refuse(status: number): void {
    if (this.exchange?.headersSent) {
      this.socket.destroy()
      return
    }
    if (!this.socket.writableEnded && !this.socket.destroyed) this.socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, 'latin1')
    this.close()
  }

  /** Ends the connection after what is written, reading and dropping what the client still sends until it closes too. */
  private close(): void {
    if (this.lingering) return
    this.lingering = true
    this.socket.end()
    if (this.socket.isPaused()) this.socket.resume()
  }

  private readonly onEnd = (): void => {
    this.clientEnded = true
    // Nothing more comes: requests already read (held, pipelined) are still answered.
    if (this.lingering) this.socket.destroy()
    else this.endIfStarved()
  }

  private readonly onClose = (): void => {
    this.gone(this)
    this.exchange?.closed()
  }
}

function noop(): void {}
