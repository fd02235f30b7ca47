import {endsChunked, foldLength, headerField, MalformedMessage, MessageReader, withOneLength, withoutOws} from './message-reader.js'

/** What a ResponseReader finds in a dyno's bytes, in order: one head, its body's pieces, the end. */
export interface ResponseEvents {
  /**
   * The final (non-1xx) head: status, reason phrase, the headers as a flat [name, value, …] list as
   * sent, the body's Content-Length (-1 when it has none, or is chunked), and the Connection
   * header's values joined (undefined without one).
   */
  head(status: number, reason: string, headers: string[], length: number, connection: string | undefined): void
  /** A piece of the body, with chunked framing removed. */
  data(chunk: Buffer): void
  /** The response is complete; `reusable` when the connection may carry another request. */
  end(reusable: boolean): void
}

/** A dyno's answer is not HTTP/1.1 the router can pass on. */
export class MalformedResponse extends MalformedMessage {}

/** The most a response head (or a chunked body's trailers) may take. */
export const MAX_HEAD_BYTES = 64 * 1024

const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/

const malformed = (message: string) => new MalformedResponse(message)

/**
 * Reads one HTTP/1.1 response from the bytes of a connection to a dyno, as they come (RFC 9112):
 * skips 1xx interim answers, frames the body by Transfer-Encoding chunked, Content-Length or the
 * connection's close (none for HEAD, 204 and 304), and says whether the connection may be kept.
 * Anything else (a bad status line or header, conflicting lengths, bytes after the response) is
 * refused with MalformedResponse, never passed on half-understood.
 */
export class ResponseReader extends MessageReader {
  private keepAlive = false
  private headStarted = false
  /** The response is complete but `end` not yet told (whether the connection may be kept): told once the rest of the bytes at hand are seen. */
  private ending?: boolean
  /** How long the dyno keeps an idle connection, if its `Keep-Alive: timeout=N` said. */
  idleTimeoutMs?: number

  constructor(
    /** The request's method: a HEAD's answer has no body whatever its headers say. */
    private readonly method: string,
    private readonly events: ResponseEvents,
  ) {
    super(MAX_HEAD_BYTES, malformed)
  }

  /** Whether any byte of the answer has come. */
  get started(): boolean {
    return this.headStarted
  }

  /** The next bytes from the dyno. Throws MalformedResponse. */
  push(chunk: Buffer): void {
    if (chunk.length > 0) this.headStarted = true
    const at = this.consume(chunk, 0, never)
    if (at < chunk.length) {
      // The dyno sent more than one answer to one request: the answer stands, the connection cannot be trusted.
      if (this.ending !== undefined) this.ending = false
      this.tellEnd()
      throw new MalformedResponse('bytes after the end of the response')
    }
    this.tellEnd()
  }

  /**
   * The dyno closed its side. True when that ends the response (a body read until close);
   * false when the response was cut short, or never came.
   */
  close(): boolean {
    const ends = this.closeEnds()
    this.tellEnd()
    return ends
  }

  protected onData(chunk: Buffer): void {
    this.events.data(chunk)
  }

  protected onEnd(): void {
    // An answer read until close ends a connection that cannot be kept.
    this.ending = this.keepAlive
  }

  protected onHead(text: string): void {
    const lines = text.split('\r\n')
    const status = STATUS_LINE.exec(lines[0]!)
    if (status === null) throw new MalformedResponse('a bad status line')
    const code = Number(status[2])
    const headers: string[] = []
    let length: string | undefined
    let transferEncoding: string | undefined
    let connection: string | undefined
    for (let index = 1; index < lines.length; index++) {
      const [name, value] = headerField(lines[index]!, malformed)
      headers.push(name, value)
      const lower = name.length === 14 || name.length === 17 || name.length === 10 ? name.toLowerCase() : ''
      if (lower === 'content-length') length = foldLength(length, value, malformed)
      else if (lower === 'transfer-encoding') transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`
      else if (lower === 'connection') connection = connection === undefined ? value : `${connection}, ${value}`
      else if (lower === 'keep-alive') {
        const timeout = /(?:^|[,;\s])timeout=(\d{1,6})(?:$|[,;\s])/i.exec(value)
        if (timeout !== null) this.idleTimeoutMs = Number(timeout[1]) * 1000
      }
    }
    // 1xx answers (103 Early Hints, a stray 100 Continue) are interim: the real answer follows.
    if (code < 200) {
      if (code === 101) throw new MalformedResponse('a protocol switch the request did not ask for')
      return
    }
    // Both framings at once is how one answer hides another (response splitting): refused, as Node's own client does.
    if (transferEncoding !== undefined && length !== undefined) throw new MalformedResponse('both Transfer-Encoding and Content-Length')
    // An HTTP/1.0 answer with Transfer-Encoding is read as framed, then the connection closed (RFC 9112 §6.1).
    this.keepAlive = keepsAlive(status[1] === '1', connection) && (transferEncoding === undefined || status[1] === '1')
    this.events.head(code, status[3] ?? '', length === undefined ? headers : withOneLength(headers, length), length === undefined ? -1 : Number(length), connection)
    if (this.method === 'HEAD' || code === 204 || code === 304) return this.ended()
    if (transferEncoding !== undefined && endsChunked(transferEncoding)) return this.expectBody('chunked')
    if (transferEncoding === undefined && length !== undefined) return this.expectBody(Number(length))
    // No length, or codings not ending in chunked: the body is read until close.
    this.keepAlive = false
    this.expectBody('until-close')
  }

  private tellEnd(): void {
    const reusable = this.ending
    if (reusable === undefined) return
    this.ending = undefined
    this.events.end(reusable)
  }
}

const never = () => false

/** Whether the connection stays open after this answer: HTTP/1.1 unless it says close, HTTP/1.0 only if it says keep-alive. */
function keepsAlive(http11: boolean, connection: string | undefined): boolean {
  // What Node's servers send: decided without splitting.
  if (connection === undefined) return http11
  if (connection === 'keep-alive') return true
  const tokens = connection.toLowerCase().split(',').map((token) => withoutOws(token))
  return http11 ? !tokens.includes('close') : tokens.includes('keep-alive')
}
