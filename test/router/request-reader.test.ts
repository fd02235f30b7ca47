import {describe, expect, it} from 'vitest'

import {MalformedRequest, MAX_REQUEST_HEAD_BYTES, RequestReader, type RequestHead} from '../../src/router/request-reader.js'

interface Read {
  heads: RequestHead[]
  /** Each request's body, in order. */
  bodies: string[]
  ends: number
  error?: MalformedRequest
  reader: RequestReader
}

/**
 * Feeds `text` to a reader in pieces of `step` bytes (1: byte by byte), going on past each stop
 * at once, as a router would whose dynos answer instantly.
 */
function read(text: string | Buffer, {step = Infinity} = {}): Read {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1')
  const result: Omit<Read, 'reader'> = {heads: [], bodies: [], ends: 0}
  let waiting = false
  const reader: RequestReader = new RequestReader({
    head: (request) => {
      result.heads.push(request)
      result.bodies.push('')
      waiting = true
    },
    data: (chunk) => (result.bodies[result.bodies.length - 1] += chunk.toString('latin1')),
    end: () => {
      result.ends++
      waiting = true
    },
  })
  try {
    for (let at = 0; at < bytes.length; at += step) {
      reader.push(bytes.subarray(at, Math.min(bytes.length, at + step)))
      while (waiting) {
        waiting = false
        reader.proceed()
      }
    }
  } catch (error) {
    if (!(error instanceof MalformedRequest)) throw error
    result.error = error
  }
  return {...result, reader}
}

const EVERY_SPLIT = [1, 2, 3, 5, 7, 64, Infinity]

describe('RequestReader', () => {
  it('reads pipelined requests with and without bodies, however the bytes are split', () => {
    const text =
      'GET /a?b=1 HTTP/1.1\r\nHost: shop.example.com\r\nX-Request-Id: abc\r\n\r\n' +
      'POST /form HTTP/1.1\r\nHost: shop\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello' +
      'PUT /up HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n' +
      'GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'
    for (const step of EVERY_SPLIT) {
      const got = read(text, {step})
      expect(got.error).toBeUndefined()
      expect(got.heads.map((head) => `${head.method} ${head.target} ${head.http11 ? '1.1' : '1.0'}`)).toEqual(['GET /a?b=1 1.1', 'POST /form 1.1', 'PUT /up 1.1', 'GET /old 1.0'])
      expect(got.bodies).toEqual(['', 'hello', 'hello world', ''])
      expect(got.ends).toBe(4)
      expect(got.heads[0]).toMatchObject({host: 'shop.example.com', requestId: 'abc', hasBody: false, keepAlive: true, contentLength: -1, headers: ['Host', 'shop.example.com', 'X-Request-Id', 'abc']})
      expect(got.heads[1]).toMatchObject({hasBody: true, contentLength: 5})
      expect(got.heads[2]).toMatchObject({hasBody: true, transferEncoding: 'gzip, chunked'})
      expect(got.heads[3]).toMatchObject({host: undefined, keepAlive: true})
    }
  })

  it('holds what comes after a request until the router goes on, and a body until it asks for it', () => {
    const heads: string[] = []
    let body = ''
    const reader = new RequestReader({head: (request) => heads.push(request.target), data: (chunk) => (body += chunk.toString()), end: () => {}})
    reader.push(Buffer.from('POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /2 HTTP/1.1\r\nHost: a\r\n\r\n'))
    expect(heads).toEqual(['/1'])
    expect(body).toBe('')
    expect(reader.heldBytes).toBe(31)
    // The body, then the stop after the request.
    reader.proceed()
    expect(body).toBe('abc')
    expect(heads).toEqual(['/1'])
    reader.proceed()
    expect(heads).toEqual(['/1', '/2'])
    expect(reader.heldBytes).toBe(0)
  })

  it('says whether the client keeps the connection, waits for 100 Continue, or switches protocols', () => {
    const head = (text: string) => read(`${text}\r\n\r\n`).heads[0]!
    expect(head('GET / HTTP/1.1\r\nHost: a\r\nConnection: close').keepAlive).toBe(false)
    expect(head('GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, TE').keepAlive).toBe(true)
    expect(head('GET / HTTP/1.0').keepAlive).toBe(false)
    expect(head('GET / HTTP/1.0\r\nConnection: keep-alive').keepAlive).toBe(true)
    expect(head('POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1').expectsContinue).toBe(true)
    expect(head('POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1').expectsContinue).toBe(false)
    expect(head('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket').upgrade).toBe(true)
    expect(head('GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket').upgrade).toBe(false)
    // Only spaces and tabs are trimmed from a token (never U+00A0, a byte of obs-text), and an empty Upgrade is none.
    expect(read('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\xa0\r\nUpgrade: websocket\r\n\r\n').heads[0]!.upgrade).toBe(false)
    expect(head('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade:').upgrade).toBe(false)
    // An absolute-form target: its host is the request's, given to the dyno as Host, with the path alone.
    const absolute = head('GET HTTP://Shop.example.com:8080?q=1 HTTP/1.1\r\nHost: other')
    expect(absolute).toMatchObject({host: 'Shop.example.com:8080', target: '/?q=1', headers: ['Host', 'Shop.example.com:8080']})
    // A repeated or padded length reaches the dyno as one plain length.
    expect(head('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 00\r\nContent-Length: 0').headers).toEqual(['Host', 'a', 'Content-Length', '0'])
    expect(head('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 00').hasBody).toBe(false)
    // Repeated request ids are no id.
    expect(head('GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: a\r\nX-Request-Id: b').requestId).toBeUndefined()
    // Empty lines before a request are skipped.
    expect(read('\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n').heads).toHaveLength(1)
  })

  it('keeps the bytes after a protocol switch for the tunnel', () => {
    const targets: string[] = []
    const reader = new RequestReader({head: (request) => targets.push(request.target), data: () => {}, end: () => {}})
    reader.push(Buffer.from('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00', 'latin1'))
    expect(targets).toEqual(['/ws'])
    expect(reader.takeHeld()).toEqual(Buffer.from([0x81, 0x00]))
  })

  it('refuses what could be read two ways, with the status the client is answered', () => {
    const refused = (text: string) => {
      const got = read(text)
      return got.error === undefined ? undefined : `${got.error.status} ${got.error.message}`
    }
    // Request smuggling: both framings, a coding that does not end in chunked, conflicting lengths.
    expect(refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n')).toBe('400 both Transfer-Encoding and Content-Length')
    expect(refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n')).toMatch(/^501 /)
    expect(refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n')).toMatch(/^400 a bad or conflicting Content-Length/)
    expect(refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n')).toMatch(/^400 /)
    expect(refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc')).toBeUndefined()
    expect(refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\xa0\r\n\r\n')).toMatch(/^400 a bad or conflicting Content-Length/)
    expect(refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\xa0\r\n\r\n')).toMatch(/^501 /)
    expect(refused('GET //x@evil/ HTTP/1.1\r\nHost: a\r\n\r\n')).toBeUndefined()
    expect(refused('GET http://user@evil/ HTTP/1.1\r\nHost: a\r\n\r\n')).toBe('400 a bad request target')
    expect(refused('GET a/b HTTP/1.1\r\nHost: a\r\n\r\n')).toBe('400 a bad request target')
    // Header syntax: obs-fold, a space before the colon, a bare LF, a control byte.
    expect(refused('GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  folded\r\n\r\n')).toBe('400 a bad header line')
    expect(refused('GET / HTTP/1.1\r\nHost : a\r\n\r\n')).toBe('400 a bad header line')
    expect(refused('GET / HTTP/1.1\r\nHost: a\nX-B: 1\r\n')).toBe('400 a line ending in a bare LF')
    expect(refused('GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n')).toMatch(/^400 a bad value of Host/)
    // The request line: a space in the target, an unknown version, CONNECT.
    expect(refused('GET /a b HTTP/1.1\r\nHost: a\r\n\r\n')).toBe('400 a bad request line')
    expect(refused('GET / HTTP/2.0\r\nHost: a\r\n\r\n')).toMatch(/^505 /)
    expect(refused('CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n')).toMatch(/^501 /)
    // Host: none for HTTP/1.1, or two.
    expect(refused('GET / HTTP/1.1\r\n\r\n')).toBe('400 no Host')
    expect(refused('GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n')).toBe('400 more than one Host')
    // A Host no app could have: quotes and spaces (which a log line would otherwise have to clean), bytes past ASCII.
    expect(refused('GET / HTTP/1.1\r\nHost: evil" status=200 x="\r\n\r\n')).toBe('400 a bad Host')
    expect(refused('GET / HTTP/1.1\r\nHost: \xe9x.com\r\n\r\n')).toBe('400 a bad Host')
    expect(refused('GET http://a"b/ HTTP/1.1\r\nHost: a\r\n\r\n')).toBe('400 a bad Host')
    expect(read('GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n').heads[0]?.host).toBe('[::1]:8080')
    expect(read('GET / HTTP/1.1\r\nHost: xn--x-9fa.com.\r\n\r\n').heads[0]?.host).toBe('xn--x-9fa.com.')
    // What real clients send stays: a zone id, an underscore, capitals, an empty port, an empty Host.
    for (const host of ['[fe80::1%25eth0]:80', 'my_host.Example.COM', 'example.com:', '']) expect(read(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`).heads[0]?.host).toBe(host)
    // A bad chunk, and a chunk longer than its size.
    expect(refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')).toBe('400 a bad chunk size line')
    expect(refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n')).toBe('400 a chunk longer than its size')
    // A head past the limit: 431, however it comes.
    const long = `GET / HTTP/1.1\r\nHost: a\r\nX-Long: ${'x'.repeat(MAX_REQUEST_HEAD_BYTES)}\r\n\r\n`
    expect(refused(long)).toMatch(/^431 /)
    expect(read(long, {step: 1000}).error?.status).toBe(431)
  })
})
