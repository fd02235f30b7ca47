import {STATUS_CODES} from 'node:http'
import type {Socket} from 'node:net'

import {IdleWatch} from './idle-watch.js'
import type {RequestHead} from './request-reader.js'

/** Where a request's body goes as it is read. */
export interface BodyEvents {
  data(chunk: Buffer): void
  end(): void
}

/** What an exchange needs of the connection it is on. */
export interface ExchangeConnection {
  readonly socket: Socket
  /** Every answer closes its connection (the router is handing over). */
  closing(): boolean
  /** The `Keep-Alive: timeout=N` an answer on a kept connection tells. */
  readonly keepAliveSeconds: number
  /** How long an answer under way may move no byte, unless the app it went to says otherwise (`idleMs`). */
  readonly idleConnectionMs: number
  /** The least a client that takes none of its answer is waited for (see ClientExchange.sweep). */
  readonly slowClientMs: number
  /** Reads on: into the body of this request. */
  readBody(): void
  /** The answer is all written (or could not be): the connection goes on to the next request, or closes. */
  answered(exchange: ClientExchange): void
}

/** A piece of an answer up to this size is copied into one buffer with its framing, for one write. */
const COPY_BYTES = 16 * 1024

/**
 * One request on a client connection and the router's answer to it, written straight to the
 * socket: the head as one latin1 string (with Date when the dyno sent none, the framing the
 * client can read, and whether the connection stays), the body as it comes, chunked when its
 * length is unknown. An answer given before the request's body has all come closes the connection.
 */
export class ClientExchange {
  /** The request's body has all been read (at once for one without). */
  complete: boolean
  /** The connection stays for another request after this answer. */
  keepAlive: boolean
  headersSent = false
  /** The answer's last byte has been handed to the socket. */
  ended = false
  /** The answer has all been written out. */
  finished = false
  body?: BodyEvents
  /** The head, kept until the body's first bytes go with it. */
  private head?: string
  private chunked = false
  /** An answer to HEAD, or a 204 or 304: whatever body bytes come are not sent. */
  private bodiless = false
  private abortListener?: (idle: boolean) => void
  /** The answer, under way, is cut after this long without a byte moving (the app's idle timeout, once routed). */
  idleMs: number
  /** Bytes of the dyno's answer received so far, told by whoever passes them on: movement the idle check sees. */
  received = 0
  /** Made once an answer has been under way through a sweep. */
  private idleWatch?: IdleWatch
  private continued = false

  constructor(
    readonly request: RequestHead,
    private readonly connection: ExchangeConnection,
  ) {
    this.complete = !request.hasBody
    this.keepAlive = request.keepAlive
    this.idleMs = connection.idleConnectionMs
  }

  get socket(): Socket {
    return this.connection.socket
  }

  /** The client's connection is gone (or going). */
  get destroyed(): boolean {
    return this.connection.socket.destroyed
  }

  /** Starts passing the body to `events` (a client that waits for it is told `100 Continue`); returns a stop. */
  readBody(events: BodyEvents): () => void {
    this.body = events
    if (this.request.expectsContinue && !this.continued && !this.headersSent) {
      this.continued = true
      this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1')
    }
    this.connection.readBody()
    return () => {
      if (this.body === events) this.body = undefined
    }
  }

  pauseBody(): void {
    this.socket.pause()
  }

  resumeBody(): void {
    this.socket.resume()
  }

  /**
   * The answer's head: `headers` as a flat [name, value, …] list without hop-by-hop fields (a
   * Content-Length among them when `length` is not -1). Written with the first body bytes, or at
   * once with `flush` (a streamed answer's head reaches the client before its body).
   */
  writeHead(status: number, reason: string, headers: readonly string[], length: number, flush = false): void {
    if (this.headersSent) return
    this.headersSent = true
    const {request} = this
    const bodiless = (this.bodiless = request.method === 'HEAD' || status === 204 || status === 304)
    if (!this.complete || this.connection.closing()) this.keepAlive = false
    this.chunked = !bodiless && length < 0 && request.http11
    // An HTTP/1.0 client reads a body of unknown length until the connection closes.
    if (!bodiless && length < 0 && !request.http11) this.keepAlive = false
    let head = `HTTP/1.1 ${status} ${reason === '' ? (STATUS_CODES[status] ?? '') : reason}\r\n`
    let dated = false
    for (let index = 0; index < headers.length; index += 2) {
      const name = headers[index]!
      if (name.length === 4 && name.toLowerCase() === 'date') dated = true
      head += `${name}: ${headers[index + 1]}\r\n`
    }
    // A proxy adds the Date an origin left out (RFC 9110 §6.6.1).
    if (!dated) head += `Date: ${httpDate()}\r\n`
    if (this.chunked) head += 'Transfer-Encoding: chunked\r\n'
    head += this.keepAlive ? `Connection: keep-alive\r\nKeep-Alive: timeout=${this.connection.keepAliveSeconds}\r\n\r\n` : 'Connection: close\r\n\r\n'
    this.head = head
    if (flush) this.emit('', undefined, '')
  }

  /** A piece of the body; false when the client's side is full (wait for `onDrain`). */
  write(chunk: Buffer): boolean {
    if (this.ended || chunk.length === 0 || this.bodiless) return true
    if (this.chunked) return this.emit(`${chunk.length.toString(16)}\r\n`, chunk, '\r\n')
    return this.emit('', chunk, '')
  }

  /** The answer's last piece (if any); `done` once it is all written out (or cannot be). */
  end(chunk?: Buffer, done?: () => void): void {
    if (this.ended) return
    this.ended = true
    const last = this.chunked ? '0\r\n\r\n' : ''
    const finish = (error?: Error | null) => {
      this.finished = !error
      done?.()
      this.connection.answered(this)
    }
    if (chunk !== undefined && chunk.length > 0 && !this.bodiless) this.emit(this.chunked ? `${chunk.length.toString(16)}\r\n` : '', chunk, this.chunked ? `\r\n${last}` : '', finish)
    else this.emit('', undefined, last, finish)
  }

  /**
   * Takes back a head not yet written (nothing of the answer has reached the client: a small one
   * is gathered whole first), so the router can answer instead; false once anything was written.
   */
  retract(): boolean {
    if (this.head === undefined || this.ended) return false
    this.head = undefined
    this.headersSent = false
    return true
  }

  /** The client's connection cut (an answer broken off midway cannot be finished). */
  destroy(): void {
    this.socket.destroy()
  }

  /**
   * Once when the answer cannot be finished: the client's connection closed before it was all
   * written out (`idle` false), or, under way, it has moved no byte to the client for the idle
   * window (`idle` true: the dyno sends nothing, or the client reads nothing). Without a
   * listener, an idle answer's connection is cut.
   */
  onAbort(listener: (idle: boolean) => void): void {
    this.abortListener = listener
  }

  /**
   * Called by the connection's sweep (`now` on its clock): an answer on which no byte has moved
   * for `idleMs` ends. Bytes count whichever way they go: the dyno's answer coming in, the client's
   * upload, the answer taken by the kernel for the client. While the router holds the dyno back
   * for a client that takes nothing, the wait is longer (`slowClientMs` at least): the kernel
   * frees its send buffer in large steps, so even a client reading steadily but slowly can show
   * no progress for a while.
   */
  sweep(now: number): void {
    if (!this.headersSent || this.finished) return
    const socket = this.socket
    const moved = this.received + socket.bytesRead + socket.bytesWritten - socket.writableLength
    const limit = socket.writableLength > 0 ? Math.max(this.idleMs, this.connection.slowClientMs) : this.idleMs
    if ((this.idleWatch ??= new IdleWatch()).idleFor(moved, now) < limit) return
    const listener = this.abortListener
    this.abortListener = undefined
    if (listener !== undefined) listener(true)
    else this.destroy()
  }

  /** Once when the client's side has room again after a write returned false. */
  onDrain(listener: () => void): void {
    this.socket.once('drain', listener)
  }

  /** The connection closed: the client is told nothing more. */
  closed(): void {
    if (this.finished) return
    const listener = this.abortListener
    this.abortListener = undefined
    listener?.(false)
  }

  /** Writes the head if it is still held, then `prefix`, `chunk` and `suffix`, in one write when small. */
  private emit(prefix: string, chunk: Buffer | undefined, suffix: string, callback?: (error?: Error | null) => void): boolean {
    const socket = this.socket
    if (this.head !== undefined) {
      prefix = this.head + prefix
      this.head = undefined
    }
    if (socket.destroyed || socket.writableEnded) {
      if (callback !== undefined) process.nextTick(callback, new Error('the client has gone'))
      return true
    }
    if (chunk === undefined) return socket.write(prefix + suffix, 'latin1', callback)
    if (chunk.length <= COPY_BYTES) {
      // Header strings are latin1: one byte per character.
      const out = Buffer.allocUnsafe(prefix.length + chunk.length + suffix.length)
      out.write(prefix, 0, 'latin1')
      chunk.copy(out, prefix.length)
      if (suffix !== '') out.write(suffix, prefix.length + chunk.length, 'latin1')
      return socket.write(out, callback)
    }
    socket.cork()
    if (prefix !== '') socket.write(prefix, 'latin1')
    let flowing = socket.write(chunk, suffix === '' ? callback : undefined)
    if (suffix !== '') flowing = socket.write(suffix, 'latin1', callback)
    socket.uncork()
    return flowing
  }
}

let dateSecond = 0
let dateText = ''

/** Now as an HTTP date, made at most once a second. */
function httpDate(): string {
  const now = Date.now()
  const second = Math.floor(now / 1000)
  if (second !== dateSecond) {
    dateSecond = second
    dateText = new Date(now).toUTCString()
  }
  return dateText
}
