import {describe, expect, it} from 'vitest'

import {MAX_HEAD_BYTES, MalformedResponse, ResponseReader} from '../../src/router/response-reader.js'

interface Read {
  heads: {status: number; reason: string; headers: string[]}[]
  body: string
  ends: boolean[]
  error?: unknown
  closedWhole?: boolean
  reader: ResponseReader
}

/** Feeds `text` to a reader in pieces of `step` bytes (1: byte by byte), then the connection's close if asked. */
function read(text: string | Buffer, {method = 'GET', step = Infinity, close = false} = {}): Read {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1')
  const result: Omit<Read, 'reader'> = {heads: [], body: '', ends: []}
  const reader = new ResponseReader(method, {
    head: (status, reason, headers) => result.heads.push({status, reason, headers}),
    data: (chunk) => (result.body += chunk.toString('latin1')),
    end: (reusable) => result.ends.push(reusable),
  })
  try {
    for (let at = 0; at < bytes.length; at += step) reader.push(bytes.subarray(at, Math.min(bytes.length, at + step)))
    if (close) result.closedWhole = reader.close()
  } catch (error) {
    result.error = error
  }
  return {...result, reader}
}

const EVERY_SPLIT = [1, 2, 3, 5, 7, 64, Infinity]

describe('ResponseReader', () => {
  it('reads a head and a body of known length, however the bytes are split, and keeps the connection', () => {
    const text = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n\r\nhello'
    for (const step of EVERY_SPLIT) {
      const got = read(text, {step})
      expect(got.error).toBeUndefined()
      expect(got.heads).toEqual([{status: 200, reason: 'OK', headers: ['Content-Type', 'text/plain', 'Content-Length', '5', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2']}])
      expect(got.body).toBe('hello')
      expect(got.ends).toEqual([true])
    }
  })

  it('decodes a chunked body with extensions and trailers, however the bytes are split', () => {
    const text = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nExpires: never\r\n\r\n'
    for (const step of EVERY_SPLIT) {
      const got = read(text, {step})
      expect(got.error).toBeUndefined()
      expect(got.body).toBe('hello world!')
      expect(got.ends).toEqual([true])
    }
    expect(read('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', {step: 1}).ends).toEqual([true])
  })

  it('skips 1xx interim answers and has no body for HEAD, 204 and 304', () => {
    const hints = read('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', {step: 4})
    expect(hints.heads.map((head) => head.status)).toEqual([200])
    expect(hints.body).toBe('ok')
    expect(read('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n', {method: 'HEAD'}).ends).toEqual([true])
    expect(read('HTTP/1.1 204 No Content\r\n\r\n').ends).toEqual([true])
    expect(read('HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n').ends).toEqual([true])
  })

  it('reads a body without length until the connection closes, and then does not keep it', () => {
    const got = read('HTTP/1.1 200 OK\r\n\r\nall of it', {step: 3, close: true})
    expect(got.body).toBe('all of it')
    expect(got.ends).toEqual([false])
    expect(got.closedWhole).toBe(true)
  })

  it('says the answer was cut short when the connection closes inside a head or a body of known length', () => {
    expect(read('HTTP/1.1 200 OK\r\nContent-Le', {close: true}).closedWhole).toBe(false)
    const cut = read('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf', {close: true})
    expect(cut.closedWhole).toBe(false)
    expect(cut.ends).toEqual([])
    expect(read('', {close: true}).reader.started).toBe(false)
  })

  it('keeps the connection only when HTTP/1.1 does not close it, or HTTP/1.0 asks to keep it', () => {
    expect(read('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n').ends).toEqual([false])
    expect(read('HTTP/1.1 200 OK\r\nConnection: Upgrade, Close\r\nContent-Length: 0\r\n\r\n').ends).toEqual([false])
    expect(read('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').ends).toEqual([false])
    expect(read('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n').ends).toEqual([true])
    // HTTP/1.0 with Transfer-Encoding: read as framed, then the connection is closed.
    const old = read('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n')
    expect([old.body, old.ends]).toEqual(['ok', [false]])
  })

  it('passes on one Content-Length when the dyno repeated it, and gives the body length it reads by', () => {
    const got = read('HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nX-A: 1\r\ncontent-length: 2\r\n\r\nok')
    expect(got.heads[0]!.headers).toEqual(['Content-Length', '2', 'X-A', '1'])
    expect(got.body).toBe('ok')
    const lengths: number[] = []
    for (const text of ['HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nlengthy', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n']) {
      new ResponseReader('GET', {head: (_status, _reason, _headers, length) => lengths.push(length), data: () => {}, end: () => {}}).push(Buffer.from(text))
    }
    expect(lengths).toEqual([7, -1])
  })

  it('ends the answer but does not keep the connection when more bytes follow it', () => {
    const got = read('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello\r\n')
    expect([got.body, got.ends, got.reader.done]).toEqual(['hello', [false], true])
    expect(got.error).toBeInstanceOf(MalformedResponse)
  })

  it("notes the dyno's keep-alive timeout", () => {
    expect(read('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n').reader.idleTimeoutMs).toBe(5000)
    expect(read('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n').reader.idleTimeoutMs).toBeUndefined()
  })

  it('keeps header bytes as they came: obs-text, and spaces inside values', () => {
    const got = read(Buffer.concat([Buffer.from('HTTP/1.1 200 \r\nX-Name: \t caf'), Buffer.from([0xe9, 0xa0]), Buffer.from(' a  b \t\r\nContent-Length: 0\r\n\r\n')]))
    expect(got.heads[0]!.reason).toBe('')
    expect(got.heads[0]!.headers.slice(0, 2)).toEqual(['X-Name', 'caf\u00e9\u00a0 a  b'])
  })

  it('refuses what it cannot pass on safely', () => {
    const bad = [
      'HTTP/2 200 OK\r\n\r\n',
      'HTTP/1.1 20 OK\r\n\r\n',
      'ICY 200 OK\r\n\r\n',
      'HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n',
      'HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\n\r\n',
      'HTTP/1.1 200 OK\r\nX-Null: a\u0000b\r\n\r\n',
      'HTTP/1.1 200 OK\r\nX-Bare-LF: a\nb\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
      'HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!',
      'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
      // Both framings: how one answer hides another in a client's connection.
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n2b\r\nabcHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL\r\n0\r\n\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc',
      // Lines ended by a bare LF: refused at once, not waited on until the request times out.
      'HTTP/1.1 200 OK\nContent-Length: 2\n\nhi',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\nb\r\n\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokay\r\n',
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n',
      // A second answer to one request.
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n',
    ]
    for (const text of bad) for (const step of [1, Infinity]) expect(read(text, {step}).error, JSON.stringify(text)).toBeInstanceOf(MalformedResponse)
    // Repeated lengths that agree are one length.
    expect(read('HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok').body).toBe('ok')
  })

  it('refuses a head or a chunk line that never ends, without holding more than the limit', () => {
    const endless = read(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(MAX_HEAD_BYTES)}`, {step: 1000})
    expect(endless.error).toBeInstanceOf(MalformedResponse)
    const chunkLine = read(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;${'x'.repeat(10_000)}`, {step: 100})
    expect(chunkLine.error).toBeInstanceOf(MalformedResponse)
  })
})
