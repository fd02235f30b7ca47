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
export class MalformedResponse extends Error {}

/** The most a response head (or a chunked body's trailers) may take. */
export const MAX_HEAD_BYTES = 64 * 1024
const MAX_CHUNK_LINE_BYTES = 4096
const CRLF = Buffer.from('\r\n')

const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/
const DIGITS = /^\d{1,15}$/
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,12})[\t ]*(?:;[\t\x20-\x7e\x80-\xff]*)?$/

type State = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'until-close' | 'done'

/**
 * Reads one HTTP/1.1 response from the bytes of a connection to a dyno, as they come (RFC 9112):
 * skips 1xx interim answers, frames the body by Transfer-Encoding chunked, Content-Length or the
 * connection's close (none for HEAD, 204 and 304), and says whether the connection may be kept.
 * Anything else (a bad status line or header, conflicting lengths, bytes after the response) is
 * refused with MalformedResponse, never passed on half-understood.
 */
export class ResponseReader {
  private state: State = 'head'
  /** Bytes of a head or framing line not yet complete. */
  private pending?: Buffer
  private remaining = 0
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
  ) {}

  /** Whether any byte of the answer has come. */
  get started(): boolean {
    return this.headStarted
  }

  get done(): boolean {
    return this.state === 'done'
  }

  /** The next bytes from the dyno. Throws MalformedResponse. */
  push(chunk: Buffer): void {
    if (chunk.length > 0) this.headStarted = true
    this.consume(chunk)
    this.tellEnd()
  }

  private consume(chunk: Buffer): void {
    let at = 0
    while (at < chunk.length) {
      switch (this.state) {
        case 'head':
        case 'trailers':
        case 'chunk-size':
        case 'chunk-end': {
          const line = this.takeUntil(chunk, at, this.state === 'chunk-size' || this.state === 'chunk-end' ? '\r\n' : '\r\n\r\n')
          if (line === undefined) return
          at = line.next
          this.onLine(line.text)
          break
        }
        case 'length':
        case 'chunk-data': {
          const take = Math.min(this.remaining, chunk.length - at)
          this.events.data(take === chunk.length ? chunk : chunk.subarray(at, at + take))
          at += take
          this.remaining -= take
          if (this.remaining > 0) return
          if (this.state === 'length') this.finish(this.keepAlive)
          else this.state = 'chunk-end'
          break
        }
        case 'until-close':
          this.events.data(at === 0 ? chunk : chunk.subarray(at))
          return
        case 'done':
          // The dyno sent more than one answer to one request: the answer stands, the connection cannot be trusted.
          if (this.ending !== undefined) this.ending = false
          this.tellEnd()
          throw new MalformedResponse('bytes after the end of the response')
      }
    }
  }

  /**
   * The dyno closed its side. True when that ends the response (a body read until close);
   * false when the response was cut short, or never came.
   */
  close(): boolean {
    if (this.state === 'until-close') this.finish(false)
    this.tellEnd()
    return this.state === 'done'
  }

  /** The text up to `end` (latin1, without `end`) and the offset after it, once it has all come. */
  private takeUntil(chunk: Buffer, at: number, end: string): {text: string; next: number} | undefined {
    const limit = end === '\r\n' && this.state !== 'trailers' ? MAX_CHUNK_LINE_BYTES : MAX_HEAD_BYTES
    if (this.pending === undefined) {
      const found = chunk.indexOf(end, at, 'latin1')
      if (found !== -1 && found - at <= limit) return {text: chunk.toString('latin1', at, found), next: found + end.length}
      if (found === -1 && chunk.length - at <= limit) this.pending = refuseBareLf(Buffer.from(chunk.subarray(at)))
      else throw new MalformedResponse(`a ${this.state === 'head' ? 'head' : 'framing line'} longer than ${limit} bytes`)
      return undefined
    }
    // The end may straddle the two pieces: look from just before where the new bytes start.
    const joined = Buffer.concat([this.pending, chunk.subarray(at)])
    const found = joined.indexOf(end, Math.max(0, this.pending.length - end.length + 1), 'latin1')
    if (found === -1 || found > limit) {
      if (joined.length > limit) throw new MalformedResponse(`a ${this.state === 'head' ? 'head' : 'framing line'} longer than ${limit} bytes`)
      this.pending = refuseBareLf(joined)
      return undefined
    }
    const consumed = found + end.length - this.pending.length
    this.pending = undefined
    return {text: joined.toString('latin1', 0, found), next: at + consumed}
  }

  private onLine(text: string): void {
    switch (this.state) {
      case 'head':
        return this.onHead(text)
      case 'chunk-size': {
        const size = CHUNK_SIZE.exec(text)
        if (size === null) throw new MalformedResponse('a bad chunk size line')
        this.remaining = Number.parseInt(size[1]!, 16)
        // The last chunk: trailers (usually none) follow. Its empty line may be all there is.
        this.state = this.remaining > 0 ? 'chunk-data' : 'trailers'
        if (this.state === 'trailers') this.pending = Buffer.from(CRLF)
        return
      }
      case 'chunk-end':
        if (text !== '') throw new MalformedResponse('a chunk longer than its size')
        this.state = 'chunk-size'
        return
      case 'trailers':
        // Trailer fields are checked as header fields, then dropped (the client was not told to expect them).
        for (const line of text.split('\r\n').slice(1)) {
          const colon = line.indexOf(':')
          if (!TOKEN.test(line.slice(0, Math.max(0, colon))) || !FIELD_VALUE.test(line.slice(colon + 1))) throw new MalformedResponse('a bad trailer field')
        }
        return this.finish(this.keepAlive)
    }
  }

  private onHead(text: string): void {
    const lines = text.split('\r\n')
    const status = STATUS_LINE.exec(lines[0]!)
    if (status === null) throw new MalformedResponse('a bad status line')
    const code = Number(status[2])
    const headers: string[] = []
    let length: string | undefined
    /** Content-Length came more than once (agreeing): one is passed on, as RFC 9110 §8.6 asks. */
    let repeatedLength = false
    let transferEncoding: string | undefined
    let connection: string | undefined
    for (let index = 1; index < lines.length; index++) {
      const line = lines[index]!
      const colon = line.indexOf(':')
      const name = colon > 0 ? line.slice(0, colon) : ''
      // A field folded onto the next line (obs-fold) or a name with spaces is refused (RFC 9112 §5).
      if (!TOKEN.test(name)) throw new MalformedResponse(`a bad header line`)
      const value = withoutOws(line, colon + 1)
      if (!FIELD_VALUE.test(value)) throw new MalformedResponse(`a bad value of ${name}`)
      headers.push(name, value)
      const lower = name.length === 14 || name.length === 17 || name.length === 10 ? name.toLowerCase() : ''
      if (lower === 'content-length') {
        if (length === undefined && DIGITS.test(value)) length = value
        // Repeated lengths must agree: "5, 5" or two fields of 5 are one length.
        else for (const each of value.split(',')) {
          repeatedLength = true
          const trimmed = each.trim()
          if (!DIGITS.test(trimmed) || (length !== undefined && trimmed !== length)) throw new MalformedResponse('a bad or conflicting Content-Length')
          length = trimmed
        }
      } else if (lower === 'transfer-encoding') transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`
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
    this.events.head(code, status[3] ?? '', repeatedLength ? withOneLength(headers, length!) : headers, length === undefined ? -1 : Number(length), connection)
    if (this.method === 'HEAD' || code === 204 || code === 304) return this.finish(this.keepAlive)
    if (transferEncoding !== undefined) {
      // Chunked must come last; anything else is read until close.
      const codings = transferEncoding.toLowerCase().split(',').map((coding) => coding.trim())
      if (codings.at(-1) === 'chunked') this.state = 'chunk-size'
      else this.state = 'until-close'
      return
    }
    if (length !== undefined) {
      this.remaining = Number(length)
      if (this.remaining === 0) return this.finish(this.keepAlive)
      this.state = 'length'
      return
    }
    this.state = 'until-close'
  }

  private finish(reusable: boolean): void {
    this.state = 'done'
    this.ending = reusable
  }

  private tellEnd(): void {
    const reusable = this.ending
    if (reusable === undefined) return
    this.ending = undefined
    this.events.end(reusable)
  }
}

/** The headers with every Content-Length field replaced by one, at the first one's place. */
function withOneLength(headers: string[], length: string): string[] {
  const out: string[] = []
  let placed = false
  for (let index = 0; index < headers.length; index += 2) {
    if (headers[index]!.toLowerCase() !== 'content-length') out.push(headers[index]!, headers[index + 1]!)
    else if (!placed) {
      out.push(headers[index]!, length)
      placed = true
    }
  }
  return out
}

/** `bytes` of a head or framing line not yet ended, refused if a line in it ends in a bare LF (which would never end it). */
function refuseBareLf(bytes: Buffer): Buffer {
  for (let at = bytes.indexOf(0x0a); at !== -1; at = bytes.indexOf(0x0a, at + 1)) if (at === 0 || bytes[at - 1] !== 0x0d) throw new MalformedResponse('a line ending in a bare LF')
  return bytes
}

/** Whether the connection stays open after this answer: HTTP/1.1 unless it says close, HTTP/1.0 only if it says keep-alive. */
function keepsAlive(http11: boolean, connection: string | undefined): boolean {
  // What Node's servers send: decided without splitting.
  if (connection === undefined) return http11
  if (connection === 'keep-alive') return true
  const tokens = connection.toLowerCase().split(',').map((token) => token.trim())
  return http11 ? !tokens.includes('close') : tokens.includes('keep-alive')
}

/** The field value after `from`, without the spaces and tabs around it (and only those: String.trim would also take U+00A0, a byte of obs-text). */
function withoutOws(line: string, from: number): string {
  let start = from
  let end = line.length
  while (start < end && (line.charCodeAt(start) === 0x20 || line.charCodeAt(start) === 0x09)) start++
  while (end > start && (line.charCodeAt(end - 1) === 0x20 || line.charCodeAt(end - 1) === 0x09)) end--
  return line.slice(start, end)
}
