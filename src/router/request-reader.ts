import {endsChunked, foldLength, headerField, MalformedMessage, MessageReader, withOneLength, withoutOws} from './message-reader.js'

/** A client's request is not HTTP/1.1 the router will pass on; `status` is its answer (400, 431, 501, 505). */
export class MalformedRequest extends MalformedMessage {}

/** The most a request's line and headers may take (Node's default): more is 431. */
export const MAX_REQUEST_HEAD_BYTES = 16 * 1024

/** What the router needs of a request's head, read once. */
export interface RequestHead {
  method: string
  /** The request target as sent (origin form, usually: `/a?b=1`). */
  target: string
  /** HTTP/1.1; else HTTP/1.0. */
  http11: boolean
  /** The header fields as sent: a flat [name, value, …] list of latin1 strings. */
  headers: string[]
  host: string | undefined
  /** The Connection header's values joined. */
  connection: string | undefined
  transferEncoding: string | undefined
  /** The body's length: -1 without a Content-Length. */
  contentLength: number
  /** X-Request-Id when sent once. */
  requestId: string | undefined
  hasBody: boolean
  /** The client waits for `100 Continue` before it sends its body. */
  expectsContinue: boolean
  /** A protocol switch (a WebSocket handshake): the connection becomes a tunnel after it. */
  upgrade: boolean
  /** The client would keep the connection: HTTP/1.1 unless it says close, HTTP/1.0 only if it says keep-alive. */
  keepAlive: boolean
}

/** What a RequestReader finds, in order for each request: its head, its body's pieces, its end. */
export interface RequestEvents {
  head(request: RequestHead): void
  data(chunk: Buffer): void
  end(): void
}

const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e\x80-\xff]+) HTTP\/(\d)\.(\d)$/

/** What a Host field may hold: a reg-name's characters, an IP literal's brackets and colons, a port. */
const HOST = /^[A-Za-z0-9\-._~%!$&'()*+,;=:[\]]*$/

/** A target in absolute form: its authority (no user info) and the rest. */
const ABSOLUTE_FORM = /^https?:\/\/([^/?#@]+)([/?].*)?$/i

const malformed = (message: string, status?: number) => new MalformedRequest(message, status)

/**
 * Reads a client connection's requests as their bytes come (RFC 9112), strictly: a request line
 * and headers that could be read two ways (obs-fold, spaces before a colon, a bare LF, both or
 * conflicting lengths, a coding that does not end in chunked, no Host or two) are refused with
 * MalformedRequest, never passed on. It stops after a head with a body until `proceed()` (the body
 * is read only once the dyno is there to take it), and after each whole request until `proceed()`
 * (its answer is done); bytes that came meanwhile, a pipelined request's too, are held till then.
 */
export class RequestReader extends MessageReader {
  /** Bytes read and not yet consumed, while stopped. */
  private held?: Buffer
  private stopped = false
  private readonly isStopped = () => this.stopped
  /** A head and an end read and not yet told: told once the bytes at hand are read or held, so a listener may call proceed(). */
  private arrived?: RequestHead
  private endArrived = false

  constructor(private readonly events: RequestEvents) {
    super(MAX_REQUEST_HEAD_BYTES, malformed)
  }

  /** The next bytes from the client. Throws MalformedRequest. */
  push(chunk: Buffer): void {
    if (this.stopped) return this.hold(chunk, 0)
    const at = this.consume(chunk, 0, this.isStopped)
    if (at < chunk.length) this.hold(chunk, at)
    const request = this.arrived
    this.arrived = undefined
    if (request !== undefined) this.events.head(request)
    if (this.endArrived) {
      this.endArrived = false
      this.events.end()
    }
  }

  /** Goes on: into the body of the request just read, or on to the next request. Throws MalformedRequest. */
  proceed(): void {
    this.stopped = false
    if (this.done) this.restart()
    const held = this.held
    this.held = undefined
    if (held !== undefined) this.push(held)
  }

  /** How many bytes wait to be read (the connection is paused past a limit). */
  get heldBytes(): number {
    return this.held?.length ?? 0
  }

  /** The reader has used up what it was given and waits for more bytes (not stopped at a request or body). */
  get wantsBytes(): boolean {
    return !this.stopped
  }

  /** Part of a request's head has come, and the rest has not. */
  get readingHead(): boolean {
    return this.headPending
  }

  /** Takes what came after a protocol switch's head: the tunnel's first bytes. */
  takeHeld(): Buffer {
    const held = this.held ?? Buffer.alloc(0)
    this.held = undefined
    return held
  }

  private hold(chunk: Buffer, at: number): void {
    const rest = at === 0 ? chunk : chunk.subarray(at)
    this.held = this.held === undefined ? rest : Buffer.concat([this.held, rest])
  }

  protected onData(chunk: Buffer): void {
    this.events.data(chunk)
  }

  protected onEnd(): void {
    this.stopped = true
    this.endArrived = true
  }

  protected onHead(text: string): void {
    // Empty lines before a request line are skipped (RFC 9112 §2.2): some clients send one after a body.
    let start = 0
    while (text.startsWith('\r\n', start)) start += 2
    if (start === text.length) return
    const lines = (start === 0 ? text : text.slice(start)).split('\r\n')
    const line = REQUEST_LINE.exec(lines[0]!)
    if (line === null) throw malformed('a bad request line')
    if (line[3] !== '1') throw malformed(`HTTP/${line[3]}.${line[4]}`, 505)
    const http11 = line[4] !== '0'
    const method = line[1]!
    if (method === 'CONNECT') throw malformed('CONNECT', 501)
    const headers: string[] = []
    let host: string | undefined
    let hosts = 0
    let length: string | undefined
    let transferEncoding: string | undefined
    let connection: string | undefined
    let requestId: string | undefined
    let requestIds = 0
    let expect: string | undefined
    let upgrade = false
    for (let index = 1; index < lines.length; index++) {
      const [name, value] = headerField(lines[index]!, malformed)
      headers.push(name, value)
      // Only names of these lengths are looked at more closely.
      switch (name.length) {
        case 4:
          if (name.toLowerCase() === 'host') {
            host = value
            hosts++
          }
          break
        case 6:
          if (name.toLowerCase() === 'expect') expect = value
          break
        case 7:
          if (name.toLowerCase() === 'upgrade' && value !== '') upgrade = true
          break
        case 10:
          if (name.toLowerCase() === 'connection') connection = connection === undefined ? value : `${connection}, ${value}`
          break
        case 12:
          if (name.toLowerCase() === 'x-request-id') {
            requestId = value
            requestIds++
          }
          break
        case 14:
          if (name.toLowerCase() === 'content-length') length = foldLength(length, value, malformed)
          break
        case 17:
          if (name.toLowerCase() === 'transfer-encoding') transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`
          break
      }
    }
    // One Host, and one only, for HTTP/1.1 (RFC 9112 §3.2): which app a request is for is never a guess.
    if (hosts > 1 || (http11 && hosts === 0)) throw malformed(hosts > 1 ? 'more than one Host' : 'no Host')
    // Both framings at once is how one request hides another (request smuggling).
    if (transferEncoding !== undefined && length !== undefined) throw malformed('both Transfer-Encoding and Content-Length')
    if (transferEncoding !== undefined && !endsChunked(transferEncoding)) throw malformed('a Transfer-Encoding that does not end in chunked', 501)
    let target = line[2]!
    // Absolute form (`GET http://shop.example.com/a HTTP/1.1`): its authority is the host, and
    // the dyno gets it as Host with the origin form (RFC 9112 §3.2.2), so both read one host.
    if (target.charCodeAt(0) !== 0x2f && target !== '*') {
      const absolute = ABSOLUTE_FORM.exec(target)
      if (absolute === null) throw malformed('a bad request target')
      host = absolute[1]!
      const rest = absolute[2] ?? '/'
      target = rest.startsWith('?') ? `/${rest}` : rest
      setHost(headers, host)
    }
    // A name, an address or an IPv6 literal, and a port (RFC 3986 §3.2.2): anything else is no host an app could have.
    if (host !== undefined && !HOST.test(host)) throw malformed('a bad Host')
    const tokens = connection === undefined ? undefined : connection.toLowerCase()
    const contentLength = length === undefined ? -1 : Number(length)
    const request: RequestHead = {
      method,
      target,
      http11,
      // What the dyno reads as the body's length is what the router read: one plain Content-Length.
      headers: length === undefined ? headers : withOneLength(headers, length),
      host,
      connection,
      transferEncoding,
      contentLength,
      requestId: requestIds === 1 ? requestId : undefined,
      hasBody: transferEncoding !== undefined || contentLength > 0,
      expectsContinue: http11 && expect !== undefined && expect.toLowerCase() === '100-continue',
      upgrade: upgrade && tokens !== undefined && names(tokens, 'upgrade'),
      // HTTP/1.0 with Transfer-Encoding is framed, then closed (RFC 9112 §6.1).
      keepAlive: http11 ? tokens === undefined || !names(tokens, 'close') : tokens !== undefined && names(tokens, 'keep-alive') && transferEncoding === undefined,
    }
    this.arrived = request
    // A protocol switch's bytes after its head are the tunnel's: held for it.
    if (request.upgrade) return this.ended()
    if (transferEncoding !== undefined) this.expectBody('chunked')
    else this.expectBody(request.contentLength > 0 ? request.contentLength : 0)
    // With a body, the reader waits for proceed(): the router reads it once a dyno is there to take it.
    if (request.hasBody) this.stopped = true
  }
}

/** Whether a lower-cased Connection value names `token`. */
function names(connection: string, token: string): boolean {
  if (connection === token) return true
  return connection.split(',').some((each) => withoutOws(each) === token)
}

/** Sets the Host field's value (added for an HTTP/1.0 request without one). */
function setHost(headers: string[], host: string): void {
  for (let index = 0; index < headers.length; index += 2) {
    if (headers[index]!.length === 4 && headers[index]!.toLowerCase() === 'host') {
      headers[index + 1] = host
      return
    }
  }
  headers.push('Host', host)
}
