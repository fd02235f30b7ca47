/** An HTTP/1.1 message the router cannot pass on; `status` is what a client is answered (400 unless said). */
export class MalformedMessage extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message)
  }
}

const MAX_CHUNK_LINE_BYTES = 4096
const CRLF = Buffer.from('\r\n')

export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
export const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/
export const DIGITS = /^\d{1,15}$/
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,12})[\t ]*(?:;[\t\x20-\x7e\x80-\xff]*)?$/

type State = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'until-close' | 'done'

/**
 * The framing both sides of the router read (RFC 9112): a head up to its empty line, then a body
 * framed by Transfer-Encoding chunked (decoded, trailers checked and dropped), by Content-Length,
 * or by the connection's close. A subclass reads the head (`onHead`), says how its body is framed
 * (`expectBody`), and takes the body's pieces (`onData`) and its end (`onEnd`). Anything that
 * could be read two ways (a bare LF, a bad chunk line, an over-long head) is refused.
 */
export abstract class MessageReader {
  private state: State = 'head'
  /** Bytes of a head or framing line not yet complete. */
  private pending?: Buffer
  private remaining = 0

  constructor(
    private readonly maxHeadBytes: number,
    private readonly malformed: (message: string, status?: number) => MalformedMessage,
  ) {}

  get done(): boolean {
    return this.state === 'done'
  }

  /** A head (latin1, without its final CRLFCRLF) has come: read it and call expectBody or ended. */
  protected abstract onHead(text: string): void
  protected abstract onData(chunk: Buffer): void
  /** The message's last byte has been read. */
  protected abstract onEnd(): void

  /** The body after the head just read: `length` bytes, chunked, or until the connection closes. */
  protected expectBody(framing: 'chunked' | 'until-close' | number): void {
    if (framing === 'chunked') this.state = 'chunk-size'
    else if (framing === 'until-close') this.state = 'until-close'
    else if (framing === 0) this.ended()
    else {
      this.remaining = framing
      this.state = 'length'
    }
  }

  /** The message is complete (the head just read has no body, or the body is all read). */
  protected ended(): void {
    this.state = 'done'
    this.onEnd()
  }

  /** Waits for the next message's head. */
  protected restart(): void {
    this.state = 'head'
  }

  /**
   * Reads `chunk` from `at` until it is used up, the message is done, or `stop()` says so (checked
   * after each head and body piece); returns where it stopped.
   */
  protected consume(chunk: Buffer, at: number, stop: () => boolean): number {
    while (at < chunk.length && this.state !== 'done' && !stop()) {
      switch (this.state) {
        case 'head':
        case 'trailers':
        case 'chunk-size':
        case 'chunk-end': {
          const line = this.takeUntil(chunk, at, this.state === 'chunk-size' || this.state === 'chunk-end' ? '\r\n' : '\r\n\r\n')
          if (line === undefined) return chunk.length
          at = line.next
          this.onLine(line.text)
          break
        }
        case 'length':
        case 'chunk-data': {
          const take = Math.min(this.remaining, chunk.length - at)
          this.onData(take === chunk.length ? chunk : chunk.subarray(at, at + take))
          at += take
          this.remaining -= take
          if (this.remaining > 0) return at
          if (this.state === 'length') this.ended()
          else this.state = 'chunk-end'
          break
        }
        case 'until-close':
          this.onData(at === 0 ? chunk : chunk.subarray(at))
          return chunk.length
      }
    }
    return at
  }

  /** The connection closed: true when that ends the message (a body read until close). */
  protected closeEnds(): boolean {
    if (this.state === 'until-close') this.ended()
    return this.state === 'done'
  }

  /** Whether part of a head has come (and is waiting for the rest). */
  protected get headPending(): boolean {
    return this.state === 'head' && this.pending !== undefined
  }

  /** The text up to `end` (latin1, without `end`) and the offset after it, once it has all come. */
  private takeUntil(chunk: Buffer, at: number, end: string): {text: string; next: number} | undefined {
    const limit = end === '\r\n' && this.state !== 'trailers' ? MAX_CHUNK_LINE_BYTES : this.maxHeadBytes
    if (this.pending === undefined) {
      const found = chunk.indexOf(end, at, 'latin1')
      if (found !== -1 && found - at <= limit) return {text: chunk.toString('latin1', at, found), next: found + end.length}
      if (found === -1 && chunk.length - at <= limit) this.pending = this.refuseBareLf(Buffer.from(chunk.subarray(at)))
      else throw this.tooLong(limit)
      return undefined
    }
    // The end may straddle the two pieces: look from just before where the new bytes start.
    const joined = Buffer.concat([this.pending, chunk.subarray(at)])
    const found = joined.indexOf(end, Math.max(0, this.pending.length - end.length + 1), 'latin1')
    if (found === -1 || found > limit) {
      if (joined.length > limit) throw this.tooLong(limit)
      this.pending = this.refuseBareLf(joined)
      return undefined
    }
    const consumed = found + end.length - this.pending.length
    this.pending = undefined
    return {text: joined.toString('latin1', 0, found), next: at + consumed}
  }

  private tooLong(limit: number): MalformedMessage {
    return this.state === 'head' ? this.malformed(`a head longer than ${limit} bytes`, 431) : this.malformed(`a framing line longer than ${limit} bytes`)
  }

  private onLine(text: string): void {
    switch (this.state) {
      case 'head':
        return this.onHead(text)
      case 'chunk-size': {
        const size = CHUNK_SIZE.exec(text)
        if (size === null) throw this.malformed('a bad chunk size line')
        this.remaining = Number.parseInt(size[1]!, 16)
        // The last chunk: trailers (usually none) follow. Its empty line may be all there is.
        this.state = this.remaining > 0 ? 'chunk-data' : 'trailers'
        if (this.state === 'trailers') this.pending = Buffer.from(CRLF)
        return
      }
      case 'chunk-end':
        if (text !== '') throw this.malformed('a chunk longer than its size')
        this.state = 'chunk-size'
        return
      case 'trailers':
        // Trailer fields are checked as header fields, then dropped (the other side was not told to expect them).
        for (const line of text.split('\r\n').slice(1)) {
          const colon = line.indexOf(':')
          if (!TOKEN.test(line.slice(0, Math.max(0, colon))) || !FIELD_VALUE.test(line.slice(colon + 1))) throw this.malformed('a bad trailer field')
        }
        return this.ended()
    }
  }

  /** `bytes` of a head or framing line not yet ended, refused if a line in it ends in a bare LF (which would never end it). */
  private refuseBareLf(bytes: Buffer): Buffer {
    for (let at = bytes.indexOf(0x0a); at !== -1; at = bytes.indexOf(0x0a, at + 1)) if (at === 0 || bytes[at - 1] !== 0x0d) throw this.malformed('a line ending in a bare LF')
    return bytes
  }
}

/** One header line split into its name and value (without the spaces and tabs around it); throws on a bad line. */
export function headerField(line: string, malformed: (message: string) => Error): [name: string, value: string] {
  const colon = line.indexOf(':')
  const name = colon > 0 ? line.slice(0, colon) : ''
  // A field folded onto the next line (obs-fold) or a name with spaces is refused (RFC 9112 §5).
  if (!TOKEN.test(name)) throw malformed('a bad header line')
  const value = withoutOws(line, colon + 1)
  if (!FIELD_VALUE.test(value)) throw malformed(`a bad value of ${name}`)
  return [name, value]
}

/**
 * The Content-Length so far with one more field's value folded in: repeated lengths must agree
 * ("5, 5" or two fields of 5 are one length); throws on a bad or conflicting one.
 */
export function foldLength(length: string | undefined, value: string, malformed: (message: string) => Error): string {
  if (length === undefined && DIGITS.test(value)) return value
  let folded = length
  for (const each of value.split(',')) {
    const trimmed = withoutOws(each)
    if (!DIGITS.test(trimmed) || (folded !== undefined && Number(trimmed) !== Number(folded))) throw malformed('a bad or conflicting Content-Length')
    folded = trimmed
  }
  return folded!
}

/** Whether a Transfer-Encoding's codings end with chunked (the only way its length is known). */
export function endsChunked(codings: string): boolean {
  return withoutOws(codings, codings.lastIndexOf(',') + 1).toLowerCase() === 'chunked'
}

/**
 * The headers with every Content-Length field replaced by one, at the first one's place, when
 * the length came more than once or not in its plain form (`5, 5`, `05`): what the other side
 * reads is then exactly what the router read (RFC 9110 §8.6).
 */
export function withOneLength(headers: string[], length: string): string[] {
  const plain = String(Number(length))
  let fields = 0
  let asRead = true
  for (let index = 0; index < headers.length; index += 2) {
    if (!isContentLength(headers[index]!)) continue
    fields++
    if (headers[index + 1] !== plain) asRead = false
  }
  if (fields === 1 && asRead) return headers
  const out: string[] = []
  let placed = false
  for (let index = 0; index < headers.length; index += 2) {
    if (!isContentLength(headers[index]!)) out.push(headers[index]!, headers[index + 1]!)
    else if (!placed) {
      out.push(headers[index]!, plain)
      placed = true
    }
  }
  return out
}

function isContentLength(name: string): boolean {
  return name.length === 14 && name.toLowerCase() === 'content-length'
}

/** The text after `from`, without the spaces and tabs around it (and only those: String.trim would also take U+00A0, a byte of obs-text). */
export function withoutOws(line: string, from = 0): string {
  let start = from
  let end = line.length
  while (start < end && (line.charCodeAt(start) === 0x20 || line.charCodeAt(start) === 0x09)) start++
  while (end > start && (line.charCodeAt(end - 1) === 0x20 || line.charCodeAt(end - 1) === 0x09)) end--
  return line.slice(start, end)
}
