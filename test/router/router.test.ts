import {spawn} from 'node:child_process'
import {createServer, request, type IncomingMessage, type Server} from 'node:http'
import {writeFile} from 'node:fs/promises'
import {connect, createServer as createNetServer, type AddressInfo, type Socket} from 'node:net'
import {join} from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {MAX_ENTRY_BYTES} from '../../src/agent/app-log.js'
import {Backend} from '../../src/router/backend.js'
import {Balancer} from '../../src/router/balancer.js'
import {Router, type RoutedApp} from '../../src/router/router.js'
import {eventually} from '../support/agent.js'
import {freePort} from '../support/free-port.js'
import {tempApp} from '../support/temp-app.js'

const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()))
})

/** A real HTTP server on loopback standing in for a web dyno. */
async function dyno(handler: (req: IncomingMessage, res: import('node:http').ServerResponse) => void): Promise<{port: number; server: Server}> {
  const server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return {port: (server.address() as AddressInfo).port, server}
}

/** An app behind the router whose state the test sets. */
function app(backends: Backend[], overrides: Partial<RoutedApp> = {}) {
  const lines: string[] = []
  const routed: RoutedApp = {
    backends: () => backends,
    whyNoBackend: () => 'none',
    maintenance: () => false,
    firstByteTimeoutMs: () => 30_000,
    releaseDir: () => undefined,
    balancer: new Balancer(),
    log: (line) => lines.push(line),
    ...overrides,
  }
  return {routed, lines}
}

async function router(apps: Record<string, RoutedApp>, options: ConstructorParameters<typeof Router>[1] = {}): Promise<number> {
  const front = new Router((host) => apps[host], options)
  const port = await front.listen(0, '127.0.0.1')
  closers.push(() => front.close())
  return port
}

interface Answer {
  status: number
  headers: IncomingMessage['headers']
  rawHeaders: string[]
  body: string
}

/** A request through the router with the Host header set (fetch would drop it). */
function get(port: number, host: string, path = '/', headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({host: '127.0.0.1', port, path, method: body === undefined ? 'GET' : 'POST', headers: {host, ...headers}, agent: false}, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => (text += chunk.toString()))
      res.on('end', () => resolve({status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, body: text}))
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** A request to `shop` whose body `send` writes in pieces, without a length (so it goes chunked); resolves to the answer's body. */
function streamedUpload(port: number, method: string, send: (req: import('node:http').ClientRequest) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({host: '127.0.0.1', port, method, path: '/', headers: {host: 'shop'}, agent: false}, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => (text += chunk.toString()))
      res.on('end', () => resolve(text))
    })
    req.on('error', reject)
    send(req)
  })
}

/** What a raw client gets back before the router closes its connection, having sent `head` and then `body` as fast as it can. */
function rawExchange(port: number, head: string, body?: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({port, host: '127.0.0.1'})
    let raw = ''
    socket.on('data', (chunk: Buffer) => (raw += chunk.toString('latin1')))
    socket.on('error', () => {})
    socket.once('close', () => resolve(raw))
    socket.write(head)
    if (body) socket.write(body)
  })
}

/** A dyno that answers with its name and the headers it got. */
async function echoDyno(name: string) {
  const {port} = await dyno((req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => (body += chunk.toString()))
    req.on('end', () => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({dyno: name, headers: req.headers, body}))
    })
  })
  return new Backend(name, port)
}

/** A dyno speaking raw bytes: `answer` gets each request's head in turn, with its connection; counts connections. */
async function rawDyno(answer: (head: string, socket: Socket, index: number) => void) {
  let connections = 0
  let requests = 0
  const sockets = new Set<Socket>()
  const server = createNetServer((socket) => {
    connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buffered = ''
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1')
      for (let end = buffered.indexOf('\r\n\r\n'); end !== -1; end = buffered.indexOf('\r\n\r\n')) {
        const head = buffered.slice(0, end)
        buffered = buffered.slice(end + 4)
        answer(head, socket, requests++)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return {backend: new Backend('web.1', (server.address() as AddressInfo).port), connections: () => connections}
}

describe('the router (real HTTP on loopback)', () => {
  it('chooses the app by Host, and answers an unknown Host with a plain 404 that names nothing', async () => {
    const shop = app([await echoDyno('web.1')])
    const blog = app([await echoDyno('web.1')])
    const port = await router({'shop.example.com': shop.routed, 'blog.example.com': blog.routed})
    expect(JSON.parse((await get(port, 'Shop.Example.com:8080', '/a?b=1')).body).dyno).toBe('web.1')
    expect(shop.lines).toHaveLength(1)
    expect(shop.lines[0]).toMatch(/^at=info method=GET path="\/a\?b=1" host=shop\.example\.com request_id=[0-9a-f-]{36} fwd="127\.0\.0\.1" dyno=web\.1 connect=\d+ms service=\d+ms status=200 bytes=\d+ protocol=http$/)
    await get(port, 'blog.example.com')
    expect(blog.lines).toHaveLength(1)
    const unknown = await get(port, 'nope.example.com')
    expect(unknown.status).toBe(404)
    expect(unknown.body).toContain('No such app')
    expect(unknown.body).not.toMatch(/shop|blog|127\.0\.0\.1|dev-router/)
  })

  it('balances by least outstanding requests, ties in turn', async () => {
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    const slowPort = (
      await dyno((req, res) => {
        if (req.url === '/slow') void held.then(() => res.end('slow'))
        else res.end('web.1')
      })
    ).port
    const web1 = new Backend('web.1', slowPort)
    const web2 = await echoDyno('web.2')
    const shop = app([web1, web2])
    const port = await router({shop: shop.routed})
    const order: string[] = []
    for (let i = 0; i < 4; i++) order.push((await get(port, 'shop')).body.includes('web.2') ? 'web.2' : 'web.1')
    expect(order).toEqual(['web.1', 'web.2', 'web.1', 'web.2'])
    // web.1 busy with a slow request: the next ones all go to web.2.
    const slow = get(port, 'shop', '/slow')
    while (web1.active === 0) await new Promise((resolve) => setTimeout(resolve, 10))
    for (let i = 0; i < 3; i++) expect((await get(port, 'shop')).body).toContain('"dyno":"web.2"')
    release()
    expect((await slow).body).toBe('slow')
  })

  it('tries another dyno when one refuses the connection, bodies included', async () => {
    const dead = new Backend('web.1', await freePort())
    const live = await echoDyno('web.2')
    const shop = app([dead, live])
    const port = await router({shop: shop.routed})
    for (let i = 0; i < 4; i++) {
      const answer = await get(port, 'shop', '/', {'content-type': 'text/plain'}, `body ${i}`)
      expect(answer.status).toBe(200)
      expect(JSON.parse(answer.body)).toMatchObject({dyno: 'web.2', body: `body ${i}`})
    }
    expect(shop.lines.every((line) => line.includes('dyno=web.2') && line.includes('status=200'))).toBe(true)
    // None left: H21, a 503.
    const none = app([dead])
    const port2 = await router({shop: none.routed})
    expect((await get(port2, 'shop')).status).toBe(503)
    expect(none.lines[0]).toMatch(/^at=error code=H21 desc="Backend connection refused" method=GET/)
  })

  it('passes over a dyno that refused a connection for a while (quarantine), unless no other is left, and tries it again after', async () => {
    const webOnePort = await freePort()
    const shop = app([new Backend('web.1', webOnePort), await echoDyno('web.2')])
    const alone = app([new Backend('web.1', webOnePort)])
    const port = await router({shop: shop.routed, alone: alone.routed}, {quarantineMs: 2000})
    // Each of the first two requests is given web.1 in its turn, or finds it quarantined: web.2 answers both.
    for (let i = 0; i < 2; i++) expect(JSON.parse((await get(port, 'shop')).body).dyno).toBe('web.2')
    expect((await get(port, 'alone')).status).toBe(503)
    // web.1 is back on its port, but quarantined: where another dyno can answer, web.1 gets nothing yet…
    const back = createServer((_req, res) => res.end(JSON.stringify({dyno: 'web.1'})))
    await new Promise<void>((resolve) => back.listen(webOnePort, '127.0.0.1', resolve))
    closers.push(() => new Promise((resolve) => back.close(() => resolve())))
    for (let i = 0; i < 4; i++) expect(JSON.parse((await get(port, 'shop')).body).dyno).toBe('web.2')
    // …where it is the only one, it is tried all the same.
    expect(JSON.parse((await get(port, 'alone')).body).dyno).toBe('web.1')
    // Once its quarantine is over, it takes its share again.
    await new Promise((resolve) => setTimeout(resolve, 2100))
    const answered = new Set<string>()
    for (let i = 0; i < 4; i++) answered.add(JSON.parse((await get(port, 'shop')).body).dyno)
    expect([...answered].sort()).toEqual(['web.1', 'web.2'])
  })

  it('gives up on a dyno that does not accept the connection in time, and tries another', async () => {
    // A dyno whose listen backlog is full: a socket that never accepts (backlog 0), its one place taken.
    const stuck = spawn('perl', ['-MSocket', '-e', 'socket(S, PF_INET, SOCK_STREAM, 0) or die; bind(S, pack_sockaddr_in(0, INADDR_LOOPBACK)) or die; listen(S, 0) or die; $| = 1; print((unpack_sockaddr_in(getsockname(S)))[0], "\\n"); <STDIN>'], {stdio: ['pipe', 'pipe', 'inherit']})
    closers.push(async () => void stuck.stdin.end())
    const stuckPort = await new Promise<number>((resolve) => stuck.stdout.once('data', (data: Buffer) => resolve(Number(data.toString().trim()))))
    const queued = connect({port: stuckPort, host: '127.0.0.1'})
    closers.push(async () => void queued.destroy())
    await new Promise((resolve) => queued.once('connect', resolve))
    const options = {connectTimeoutMs: 200}
    const shop = app([new Backend('web.1', stuckPort), await echoDyno('web.2')])
    const port = await router({shop: shop.routed}, options)
    for (const body of [undefined, 'a body']) {
      const answer = await get(port, 'shop', '/', {}, body)
      expect(JSON.parse(answer.body)).toMatchObject({dyno: 'web.2', body: body ?? ''})
    }
    // No other dyno: H19 (a request with a body no longer waits for the client's own timeout), and for a WebSocket too.
    const none = app([new Backend('web.1', stuckPort)])
    const port2 = await router({shop: none.routed}, options)
    expect((await get(port2, 'shop', '/', {}, 'a body')).status).toBe(503)
    expect(none.lines[0]).toMatch(/^at=error code=H19 desc="Backend connection timeout" method=POST .*dyno=web\.1 /)
    expect(await rawExchange(port2, 'GET /ws HTTP/1.1\r\nHost: shop\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')).toMatch(/^HTTP\/1\.1 503 /)
    expect(none.lines[1]).toMatch(/^at=error code=H19 /)
  })

  it('limits the pauses in a client\'s upload, not its length: a client idle past the window gets 408 (H28)', async () => {
    const shop = app([await echoDyno('web.1')])
    const port = await router({shop: shop.routed}, {clientIdleMs: 300})
    // A slow upload: a piece every 100 ms, 1 s in all, longer than the window but never pausing that long.
    const slow = await streamedUpload(port, 'POST', (req) => {
      let pieces = 0
      const timer = setInterval(() => {
        if (pieces++ < 10) return void req.write(`piece ${pieces} `)
        clearInterval(timer)
        req.end()
      }, 100)
    })
    expect(JSON.parse(slow).body).toBe(Array.from({length: 10}, (_, index) => `piece ${index + 1} `).join(''))
    // A client that stops halfway through its body: 408 once the window has passed, and its connection closed.
    const raw = await rawExchange(port, 'POST /upload HTTP/1.1\r\nHost: shop\r\nContent-Length: 100\r\n\r\nhalf of it')
    expect(raw).toMatch(/^HTTP\/1\.1 408 /)
    expect(raw).toMatch(/\r\nConnection: close\r\n/i)
    expect(shop.lines.at(-1)).toMatch(/^at=error code=H28 desc="Client Connection Idle" method=POST path="\/upload" .* status=408 /)
  })

  it('closes a connection whose request head does not all come in time, and gives up on a dyno that stops reading a body (H12)', async () => {
    // A dyno that takes the connection and never reads from it.
    const deaf = createNetServer((socket) => socket.pause())
    await new Promise<void>((resolve) => deaf.listen(0, '127.0.0.1', resolve))
    closers.push(() => new Promise((resolve) => deaf.close(() => resolve())))
    const open = new Set<Socket>()
    deaf.on('connection', (socket: Socket) => open.add(socket))
    closers.push(async () => open.forEach((socket) => socket.destroy()))
    const shop = app([new Backend('web.1', (deaf.address() as AddressInfo).port)], {firstByteTimeoutMs: () => 300})
    const port = await router({shop: shop.routed}, {headersTimeoutMs: 300})
    expect(await rawExchange(port, 'GET / HTTP/1.1\r\nHost: sh')).toMatch(/^HTTP\/1\.1 408 /)
    // 32 MiB: more than the kernel's buffers between the router and the dyno hold.
    const size = 32 * 1024 * 1024
    const answer = await rawExchange(port, `POST /upload HTTP/1.1\r\nHost: shop\r\nContent-Length: ${size}\r\n\r\n`, Buffer.alloc(size))
    expect(answer).toMatch(/^HTTP\/1\.1 503 /)
    expect(answer).toMatch(/\r\nConnection: close\r\n/i)
    expect(shop.lines.at(-1)).toMatch(/^at=error code=H12 desc="Request timeout" method=POST path="\/upload" .* status=503 /)
  })

  it('sets the forwarding headers itself, keeps a sane request id, and drops hop-by-hop headers', async () => {
    const shop = app([await echoDyno('web.1')])
    const port = await router({shop: shop.routed})
    const spoofed = await get(port, 'shop', '/', {
      'x-forwarded-for': '203.0.113.9',
      forwarded: 'for=203.0.113.9;proto=https',
      'x-forwarded-proto': 'https',
      'x-forwarded-port': '443',
      'x-request-id': 'abcdefghij0123456789-client',
      connection: 'keep-alive, x-secret',
      'x-secret': 'hop',
      'keep-alive': 'timeout=5',
      'x-kept': 'yes',
    })
    const seen = JSON.parse(spoofed.body).headers
    expect(seen['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1')
    expect(seen.forwarded).toBe('for=203.0.113.9;proto=https, for=127.0.0.1;proto=http')
    expect(seen['x-forwarded-proto']).toBe('http')
    expect(seen['x-forwarded-port']).toBe(String(port))
    expect(seen['x-request-id']).toBe('abcdefghij0123456789-client')
    expect(seen.via).toBe('1.1 dev-router')
    expect(seen['x-request-start']).toMatch(/^t=\d{13}$/)
    expect(seen.host).toBe('shop')
    expect(seen['x-kept']).toBe('yes')
    expect(seen['x-secret']).toBeUndefined()
    expect(seen['keep-alive']).toBeUndefined()
    // The log's fwd= is the peer, never the client's claim.
    expect(shop.lines[0]).toContain('fwd="127.0.0.1"')
    expect(shop.lines[0]).toContain('request_id=abcdefghij0123456789-client')

    const insane = JSON.parse((await get(port, 'shop', '/', {'x-request-id': 'short'})).body).headers
    expect(insane['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
  })

  it("passes the dyno's answer headers on without its hop-by-hop ones, repeated headers and odd names included", async () => {
    const {port: dynoPort} = await dyno((_req, res) => {
      res.writeHead(201, 'Made', [
        ['Connection', 'keep-alive, X-Hop-Only'],
        ['Keep-Alive', 'timeout=7, max=9'],
        ['X-Hop-Only', 'secret'],
        ['Set-Cookie', 'a=1'],
        ['Set-Cookie', 'b=2'],
        ['__proto__', 'just-a-header'],
        ['X-App', 'kept'],
      ].flat())
      res.end('made\n')
    })
    const shop = app([new Backend('web.1', dynoPort)])
    const port = await router({shop: shop.routed})
    const answer = await get(port, 'shop')
    expect([answer.status, answer.body]).toEqual([201, 'made\n'])
    expect(answer.headers['x-hop-only']).toBeUndefined()
    expect(answer.headers['keep-alive']).toBeUndefined()
    expect(answer.headers['set-cookie']).toEqual(['a=1', 'b=2'])
    expect(answer.headers['x-app']).toBe('kept')
    expect(answer.rawHeaders.join(' ')).toContain('__proto__ just-a-header')
    expect(shop.lines[0]).toContain('status=201 bytes=5')
  })

  it('answers for the app with Heroku codes: H12, H13, H14, H10, H80, with its own pages when it has them', async () => {
    const pages = await tempApp()
    await writeFile(join(pages, 'maintenance.html'), '<p>back soon</p>')
    await writeFile(join(pages, 'error.html'), '<p>our error page</p>')
    const stuck = new Backend('web.1', (await dyno(() => {})).port)
    const rude = new Backend('web.1', (await dyno((req) => req.socket.destroy())).port)
    const timeouts = app([stuck], {firstByteTimeoutMs: () => 300, releaseDir: () => pages})
    const closes = app([rude])
    const none = app([], {whyNoBackend: () => 'none'})
    const crashed = app([], {whyNoBackend: () => 'crashed'})
    const maintenance = app([stuck], {maintenance: () => true, releaseDir: () => pages})
    const port = await router({timeouts: timeouts.routed, closes: closes.routed, none: none.routed, crashed: crashed.routed, maintenance: maintenance.routed})

    const h12 = await get(port, 'timeouts')
    expect([h12.status, h12.body]).toEqual([503, '<p>our error page</p>'])
    expect(timeouts.lines[0]).toMatch(/^at=error code=H12 desc="Request timeout" method=GET path="\/" host=timeouts .* dyno=web\.1 connect=\d+ms service=\d+ms status=503 bytes=21 protocol=http$/)
    expect(stuck.active).toBe(0)

    expect((await get(port, 'closes')).status).toBe(503)
    expect(closes.lines[0]).toMatch(/^at=error code=H13 desc="Connection closed without response"/)
    const h14 = await get(port, 'none')
    expect(h14.status).toBe(503)
    expect(h14.body).toContain('Application error')
    expect(none.lines[0]).toMatch(/^at=error code=H14 desc="No web processes running" .* dyno= /)
    expect((await get(port, 'crashed')).status).toBe(503)
    expect(crashed.lines[0]).toMatch(/^at=error code=H10 desc="App crashed"/)
    const h80 = await get(port, 'maintenance')
    expect([h80.status, h80.body, h80.headers['retry-after']]).toEqual([503, '<p>back soon</p>', '60'])
    expect(maintenance.lines[0]).toMatch(/^at=info code=H80 desc="Maintenance mode"/)
  })

  it('answers a request it fails on itself with a 503 (H99), reports the fault, and goes on serving', async () => {
    const faults: string[] = []
    const shop = app([await echoDyno('web.1')])
    const broken = app([await echoDyno('web.1')], {
      maintenance: () => {
        throw new Error('the maintenance flag cannot be read')
      },
    })
    const apps: Record<string, RoutedApp> = {shop: shop.routed, broken: broken.routed}
    Object.defineProperty(apps, 'lost', {
      get() {
        throw new Error('the route table is gone')
      },
    })
    const port = await router(apps, {onError: (error) => faults.push((error as Error).message)})
    const h99 = await get(port, 'broken', '/a')
    expect([h99.status, h99.body]).toEqual([503, expect.stringContaining('Application error')])
    expect(broken.lines).toEqual([expect.stringMatching(/^at=error code=H99 desc="Platform error" method=GET path="\/a" host=broken .* status=503 bytes=\d+ protocol=http$/)])
    expect((await get(port, 'lost')).status).toBe(503)
    expect(await rawExchange(port, 'GET /ws HTTP/1.1\r\nHost: broken\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')).toMatch(/^HTTP\/1\.1 503 /)
    expect(broken.lines[1]).toMatch(/^at=error code=H99 /)
    expect(faults).toEqual(['the maintenance flag cannot be read', 'the route table is gone', 'the maintenance flag cannot be read'])
    // The same router still serves every other request.
    expect(JSON.parse((await get(port, 'shop')).body).dyno).toBe('web.1')
  })

  it('keeps connections to a dyno open between requests, and reads every framing a dyno may answer with', async () => {
    const dyno = await rawDyno((head, socket) => {
      const path = head.split(' ')[1]
      if (path === '/length') socket.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nlength')
      else if (path === '/chunked') socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nchun\r\n3;x=y\r\nked\r\n0\r\nX-Trailer: t\r\n\r\n')
      else if (path === '/hints') socket.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhints')
      else if (path === '/no-content') socket.write('HTTP/1.1 204 No Content\r\nX-Kept: yes\r\n\r\n')
      // No length: the body runs until the dyno closes the connection.
      else if (path === '/until-close') socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close')
    })
    const shop = app([dyno.backend])
    const port = await router({shop: shop.routed})
    for (let i = 0; i < 3; i++) expect((await get(port, 'shop', '/length')).body).toBe('length')
    expect(dyno.connections()).toBe(1)
    const chunked = await get(port, 'shop', '/chunked')
    expect([chunked.status, chunked.body, chunked.headers['x-trailer']]).toEqual([200, 'chunked', undefined])
    const hints = await get(port, 'shop', '/hints')
    expect([hints.status, hints.body]).toEqual([201, 'hints'])
    const noContent = await get(port, 'shop', '/no-content')
    expect([noContent.status, noContent.body, noContent.headers['x-kept']]).toEqual([204, '', 'yes'])
    expect(dyno.connections()).toBe(1)
    const untilClose = await get(port, 'shop', '/until-close')
    expect([untilClose.status, untilClose.body]).toEqual([200, 'until close'])
    expect((await get(port, 'shop', '/length')).body).toBe('length')
    expect(dyno.connections()).toBe(2)
    expect(shop.lines.map((line) => /status=(\d+) bytes=(\d+)/.exec(line)!.slice(1).join(' '))).toEqual(['200 6', '200 6', '200 6', '200 7', '201 5', '204 0', '200 11', '200 6'])
  })

  it('answers H17 for an answer it cannot read, and sends a GET again when the dyno closed its kept-alive connection unanswered', async () => {
    const malformed = await rawDyno((_head, socket) => socket.write('HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n'))
    // The first request is answered; the second, on the same connection, is dropped as a dyno closing it would.
    const closing = await rawDyno((_head, socket, index) => (index === 1 ? socket.destroy() : socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n${index}`)))
    const bad = app([malformed.backend])
    const shop = app([closing.backend])
    const port = await router({bad: bad.routed, shop: shop.routed})
    const h17 = await get(port, 'bad')
    expect([h17.status, h17.body]).toEqual([503, expect.stringContaining('Application error')])
    expect(bad.lines[0]).toMatch(/^at=error code=H17 desc="Poorly formatted HTTP response" method=GET .* status=503 /)
    // A small answer broken off before any of it reached the client (it is gathered whole): the client gets the router's 503.
    const broken = await rawDyno((_head, socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nseven b'))
    const small = app([broken.backend])
    const smallPort = await router({small: small.routed})
    const cut = await get(smallPort, 'small', '/cut')
    expect([cut.status, cut.body]).toEqual([503, expect.stringContaining('Application error')])
    expect(small.lines).toEqual([expect.stringMatching(/^at=error code=H18 desc="Server Request Interrupted" method=GET path="\/cut" .* status=503 /)])
    expect((await get(port, 'shop')).body).toBe('0')
    expect((await get(port, 'shop')).body).toBe('2')
    expect(closing.connections()).toBe(2)
    expect(shop.lines.map((line) => /^at=\w+/.exec(line)![0])).toEqual(['at=info', 'at=info'])
    // The same with a body (a GET may have one): part of it may be read already, so it is not sent twice but answered H13.
    const closingAgain = await rawDyno((_head, socket, index) => (index === 1 ? socket.destroy() : socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n0')))
    const withBody = app([closingAgain.backend])
    const port2 = await router({shop: withBody.routed})
    expect((await get(port2, 'shop')).body).toBe('0')
    const dropped = await new Promise<number>((resolve, reject) => {
      request({host: '127.0.0.1', port: port2, method: 'GET', path: '/search', headers: {host: 'shop', 'content-length': '11'}, agent: false}, (res) => {
        res.resume()
        resolve(res.statusCode!)
      })
        .on('error', reject)
        .end('q=something')
    })
    expect(dropped).toBe(503)
    expect(withBody.lines[1]).toMatch(/^at=error code=H13 /)
    expect(closingAgain.connections()).toBe(1)
  })

  it('after a kept-alive connection closed unanswered, sends the GET again on a new connection, not on another kept one', async () => {
    // Two requests at once leave two kept-alive connections; from the third on, the dyno drops each request after 200 ms, as one dying would.
    const dying = await rawDyno((_head, socket, index) => {
      if (index < 2) setTimeout(() => socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n${index}`), 100)
      else setTimeout(() => socket.destroy(), 200)
    })
    const shop = app([dying.backend])
    const port = await router({shop: shop.routed})
    expect((await Promise.all([get(port, 'shop'), get(port, 'shop')])).map((answer) => answer.status)).toEqual([200, 200])
    expect(dying.connections()).toBe(2)
    expect((await get(port, 'shop', '/again')).status).toBe(503)
    // The try again went on a third connection: the other kept one (to a dyno that may be gone) was closed.
    expect(dying.connections()).toBe(3)
    const [line] = shop.lines.slice(2)
    expect(line).toMatch(/^at=error code=H13 desc="Connection closed without response" method=GET path="\/again" /)
    // The client waited for both tries, and the line says so.
    expect(Number(/ service=(\d+)ms /.exec(line!)![1])).toBeGreaterThan(350)
  })

  it('gives a GET sent again only what is left of the request timeout (H12 counts from the first try)', async () => {
    // The first request is answered; the second is held 1.2 s then dropped unanswered; the try again is never answered.
    const holding = await rawDyno((_head, socket, index) => {
      if (index === 0) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n0')
      else if (index === 1) setTimeout(() => socket.destroy(), 1200)
    })
    const shop = app([holding.backend], {firstByteTimeoutMs: () => 2000})
    const port = await router({shop: shop.routed})
    expect((await get(port, 'shop')).status).toBe(200)
    expect((await get(port, 'shop', '/held')).status).toBe(503)
    expect(holding.connections()).toBe(2)
    const line = shop.lines.at(-1)!
    expect(line).toMatch(/^at=error code=H12 desc="Request timeout" method=GET path="\/held" /)
    // One window of 2 s in all, not 1.2 s and then 2 s more.
    expect(Number(/ service=(\d+)ms /.exec(line)![1])).toBeLessThan(2900)
  })

  it('never sends a request on a connection the dyno spoiled or closed: a DELETE after either reaches the dyno', async () => {
    let closedByDyno!: () => void
    const dynoClosed = new Promise<void>((resolve) => (closedByDyno = resolve))
    const dyno = await rawDyno((head, socket) => {
      const [method, path] = head.split(' ')
      // Two bytes more than the answer: the connection cannot carry another request.
      if (path === '/spoiled') socket.write('HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nspoiled\r\n')
      // Answered, then closed by the dyno while the router keeps it idle.
      else if (path === '/then-close') {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbye.')
        setTimeout(() => socket.end(), 20).unref()
        socket.once('close', closedByDyno)
      } else socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${method!.length}\r\n\r\n${method}`)
    })
    const shop = app([dyno.backend])
    const port = await router({shop: shop.routed})
    const send = (method: string, path: string) =>
      new Promise<string>((resolve, reject) => {
        request({host: '127.0.0.1', port, path, method, headers: {host: 'shop'}, agent: false}, (res) => {
          let text = ''
          res.on('data', (chunk: Buffer) => (text += chunk.toString()))
          res.on('end', () => resolve(`${res.statusCode} ${text}`))
        })
          .on('error', reject)
          .end()
      })
    expect(await send('GET', '/spoiled')).toBe('200 spoiled')
    expect(await send('DELETE', '/')).toBe('200 DELETE')
    expect(dyno.connections()).toBe(2)
    expect(await send('GET', '/then-close')).toBe('200 bye.')
    await dynoClosed
    expect(await send('DELETE', '/')).toBe('200 DELETE')
    expect(dyno.connections()).toBe(3)
    expect(shop.lines.every((line) => line.startsWith('at=info'))).toBe(true)
  })

  it('sends bodies on kept-alive connections, chunked when their length is unknown, and drops a connection the dyno answered before the upload ended', async () => {
    let connections = 0
    const {port: dynoPort, server} = await dyno((req, res) => {
      if (req.url === '/early') {
        // Answers at once, reading none of the upload.
        res.writeHead(413, {'content-length': '8'})
        res.end('too big\n')
        return
      }
      let body = ''
      req.on('data', (chunk: Buffer) => (body += chunk.toString()))
      req.on('end', () => res.end(`${req.headers['transfer-encoding'] ?? `length ${req.headers['content-length']}`}: ${body}`))
    })
    server.on('connection', () => connections++)
    const shop = app([new Backend('web.1', dynoPort)])
    const port = await router({shop: shop.routed})
    expect((await get(port, 'shop', '/', {'content-type': 'text/plain'}, 'one')).body).toBe('length 3: one')
    expect((await get(port, 'shop', '/', {'content-type': 'text/plain'}, 'two!')).body).toBe('length 4: two!')
    expect(connections).toBe(1)
    // A body of unknown length, in pieces.
    const streamed = await streamedUpload(port, 'PUT', (req) => {
      req.write('first ')
      setTimeout(() => req.end('second'), 50)
    })
    expect(streamed).toBe('chunked: first second')
    // A coding under chunked is the dyno's to undo: the router passes it on.
    const client = connect(port, '127.0.0.1')
    let coded = ''
    client.on('data', (chunk: Buffer) => (coded += chunk.toString()))
    client.write('POST / HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nbytes\r\n0\r\n\r\n')
    while (!coded.endsWith('gzip, chunked: bytes')) await new Promise((resolve) => setTimeout(resolve, 10))
    client.destroy()
    expect(connections).toBe(1)
    // The dyno answers before the upload is over: the answer goes back, the connection is not kept.
    const early = await new Promise<string>((resolve, reject) => {
      const req = request({host: '127.0.0.1', port, method: 'POST', path: '/early', headers: {host: 'shop', 'content-length': String(64 * 1024)}, agent: false}, (res) => {
        let text = ''
        res.on('data', (chunk: Buffer) => (text += chunk.toString()))
        res.on('end', () => {
          // Nor the client's: nothing waits for the rest of its body.
          resolve(`${res.statusCode} ${res.headers.connection} ${text}`)
          req.destroy()
        })
      })
      req.on('error', () => {})
      req.write(Buffer.alloc(1024, 'x'))
      setTimeout(() => reject(new Error('no answer before the upload ended')), 5000).unref()
    })
    expect(early).toBe('413 close too big\n')
    expect((await get(port, 'shop', '/', {}, 'after')).body).toBe('length 5: after')
    expect(connections).toBe(2)
    expect(shop.lines.map((line) => /status=(\d+)/.exec(line)![1])).toEqual(['200', '200', '200', '200', '413', '200'])
  })

  it('tells a client that waits for 100 Continue to send its body, and passes the body on', async () => {
    const shop = app([await echoDyno('web.1')])
    const port = await router({shop: shop.routed})
    const socket = connect({port, host: '127.0.0.1'})
    let raw = ''
    socket.on('data', (chunk: Buffer) => (raw += chunk.toString()))
    socket.write('POST /form HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n')
    while (!raw.includes('\r\n\r\n')) await new Promise((resolve) => setTimeout(resolve, 10))
    expect(raw).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n$/)
    socket.write('hello')
    while (!raw.endsWith('}')) await new Promise((resolve) => setTimeout(resolve, 10))
    socket.destroy()
    expect(raw).toMatch(/\r\n\r\nHTTP\/1\.1 200 OK\r\n/)
    expect(JSON.parse(raw.slice(raw.lastIndexOf('\r\n\r\n') + 4))).toMatchObject({dyno: 'web.1', body: 'hello'})
  })

  it('speaks HTTP/1.1 to clients: pipelined requests answered in order, HEAD, HTTP/1.0, Date, and an idle connection closed after the keep-alive timeout', async () => {
    const dyno = await rawDyno((head, socket) => {
      const [method, path] = head.split(' ')
      // No Date of its own; /stream has no length (chunked).
      if (path === '/stream') socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n')
      else socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path!.length}\r\n\r\n${method === 'HEAD' ? '' : path}`)
    })
    const shop = app([dyno.backend])
    const port = await router({shop: shop.routed}, {keepAliveMs: 300})
    // Three requests in one write, the last closing: three answers in order, then the close.
    const pipelined = await rawExchange(port, 'GET /one HTTP/1.1\r\nHost: shop\r\n\r\nHEAD /two HTTP/1.1\r\nHost: shop\r\n\r\nGET /three HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n')
    const answers = pipelined.split(/(?=HTTP\/1\.1 )/)
    expect(answers).toHaveLength(3)
    expect(answers[0]).toMatch(/^HTTP\/1\.1 200 OK\r\nContent-Length: 4\r\nDate: \w{3}, .* GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=1\r\n\r\n\/one$/)
    // HEAD: the dyno's length, no body.
    expect(answers[1]).toMatch(/^HTTP\/1\.1 200 OK\r\nContent-Length: 4\r\n[^]*\r\n\r\n$/)
    expect(answers[2]).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*Connection: close\r\n\r\n\/three$/)
    // An HTTP/1.0 client that asks to keep its connection keeps it; an answer of unknown length is
    // sent to it whole, unchunked, and ends with the connection.
    const old = await rawExchange(port, 'GET /kept HTTP/1.0\r\nHost: shop\r\nConnection: keep-alive\r\n\r\nGET /stream HTTP/1.0\r\nHost: shop\r\nConnection: keep-alive\r\n\r\n')
    expect(old).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*Connection: keep-alive\r\n[^]*\r\n\r\n\/keptHTTP\/1\.1 200 OK\r\n/)
    expect(old).toMatch(/\r\nConnection: close\r\n\r\nabc$/)
    expect(old).not.toMatch(/Transfer-Encoding/)
    // A kept connection left idle is closed by the router once the keep-alive timeout has passed.
    const idle = connect({port, host: '127.0.0.1'})
    let got = ''
    idle.on('data', (chunk: Buffer) => (got += chunk.toString()))
    idle.write('GET /idle HTTP/1.1\r\nHost: shop\r\n\r\n')
    const startedAt = Date.now()
    await new Promise((resolve) => idle.on('close', resolve))
    expect(got).toMatch(/\/idle$/)
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(300)
    expect(shop.lines).toHaveLength(6)
  })

  it('gives the dyno the framing and host it read itself, and answers what a half-closed client asked', async () => {
    const heads: string[] = []
    const dyno = await rawDyno((head, socket) => {
      heads.push(head)
      const path = head.split(' ')[1]!
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`)
    })
    const shop = app([dyno.backend])
    const port = await router({'shop.example.com': shop.routed})
    const lengthOf = (head: string) => head.split('\r\n').filter((line) => /^content-length:/i.test(line))
    // `00` is no body: the next request is the next request, answered after it.
    const zero = await rawExchange(port, 'POST /zero HTTP/1.1\r\nHost: shop.example.com\r\nContent-Length: 00\r\n\r\nGET /next HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n')
    expect(zero).toMatch(/\/zeroHTTP\/1\.1 200 OK\r\n[^]*\/next$/)
    expect(lengthOf(heads[0]!)).toEqual(['Content-Length: 0'])
    // Repeated lengths reach the dyno as one.
    await rawExchange(port, 'POST /twice HTTP/1.1\r\nHost: shop.example.com\r\nContent-Length: 0, 0\r\ncontent-length: 0\r\nConnection: close\r\n\r\n')
    expect(lengthOf(heads[2]!)).toEqual(['Content-Length: 0'])
    // An absolute-form target: routed by its host, which the dyno gets as Host, with the path alone.
    await rawExchange(port, 'GET http://shop.example.com/abs?q=1 HTTP/1.1\r\nHost: other.example.com\r\nConnection: close\r\n\r\n')
    expect(heads[3]!.split('\r\n')[0]).toBe('GET /abs?q=1 HTTP/1.1')
    expect(heads[3]).toContain('\r\nHost: shop.example.com\r\n')
    // A client that sends its requests and then ends its side gets every answer, then the close.
    const halfClosed = (text: string) =>
      new Promise<string>((resolve) => {
        const socket = connect({port, host: '127.0.0.1'})
        let raw = ''
        socket.on('data', (chunk: Buffer) => (raw += chunk.toString('latin1')))
        socket.once('close', () => resolve(raw))
        socket.end(text)
      })
    expect(await halfClosed('POST /p HTTP/1.1\r\nHost: shop.example.com\r\nContent-Length: 5\r\n\r\nhello')).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n\/p$/)
    expect(await halfClosed('GET /a HTTP/1.1\r\nHost: shop.example.com\r\n\r\nGET /b HTTP/1.1\r\nHost: shop.example.com\r\n\r\n')).toMatch(/\/aHTTP\/1\.1 200 OK\r\n[^]*\/b$/)
    // One whose body stops short gets nothing, and the dyno's request is dropped (H27).
    expect(await halfClosed('POST /short HTTP/1.1\r\nHost: shop.example.com\r\nContent-Length: 9\r\n\r\nhalf')).toBe('')
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(shop.lines.at(-1)).toMatch(/code=H27 .*path="\/short"/)
  })

  it('answers a request it will not pass on with its status and closes the connection, the dyno never seeing it', async () => {
    const dyno = await rawDyno((_head, socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'))
    const shop = app([dyno.backend])
    const port = await router({shop: shop.routed})
    const status = async (head: string) => (await rawExchange(port, head)).split('\r\n')[0]
    expect(await status('GET / HTTP/1.1\r\nHost: shop\r\nX-A: 1\r\n folded\r\n\r\n')).toBe('HTTP/1.1 400 Bad Request')
    expect(await status('GET / HTTP/1.1\r\n\r\n')).toBe('HTTP/1.1 400 Bad Request')
    expect(await status('GET / HTTP/1.1\r\nHost: shop\nX-B: 1\r\n\r\n')).toBe('HTTP/1.1 400 Bad Request')
    expect(await status(`GET / HTTP/1.1\r\nHost: shop\r\nCookie: ${'x'.repeat(20_000)}\r\n\r\n`)).toBe('HTTP/1.1 431 Request Header Fields Too Large')
    expect(await status('GET / HTTP/3.0\r\nHost: shop\r\n\r\n')).toBe('HTTP/1.1 505 HTTP Version Not Supported')
    expect(await status('POST / HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: gzip\r\n\r\n')).toBe('HTTP/1.1 501 Not Implemented')
    // A request answered before a bad one on the same connection stands.
    const both = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: shop\r\n\r\nGET / HTTP/1.1\r\nHost : shop\r\n\r\n')
    expect(both).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nokHTTP\/1\.1 400 Bad Request\r\n/)
    expect(shop.lines).toHaveLength(1)
  })

  it('logs a path as the UTF-8 it was sent in, quotes escaped, and passes its bytes on unchanged', async () => {
    let seen = ''
    const {backend} = await rawDyno((head, socket) => {
      seen = head.split('\r\n')[0]!
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    })
    const shop = app([backend])
    const port = await router({shop: shop.routed})
    const head = Buffer.from('GET /café/"x" HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n', 'utf8')
    expect(await rawExchange(port, '', head)).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    expect(Buffer.from(seen, 'latin1').toString('utf8')).toBe('GET /café/"x" HTTP/1.1')
    expect(shop.lines[0]).toContain('path="/café/\\"x\\"" host=shop ')
  })

  it('logs a long path clipped, so no part of it can begin a log line of its own', async () => {
    const {backend} = await rawDyno((_head, socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'))
    const shop = app([backend])
    const port = await router({shop: shop.routed})
    const path = `/${'a'.repeat(9974)}at=error&code=H99&desc=forged`
    expect(await rawExchange(port, `GET ${path} HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n`)).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    expect(shop.lines).toHaveLength(1)
    expect(shop.lines[0]).toContain(`path="/${'a'.repeat(1999)}..." host=shop `)
    expect(shop.lines[0]).not.toContain('forged')
    // Well under what one log entry holds (MAX_ENTRY_BYTES), even were every character 3 bytes of UTF-8.
    expect(shop.lines[0]!.length * 3).toBeLessThan(MAX_ENTRY_BYTES)
  })

  it('gives the dyno a Host when an HTTP/1.0 client sent none', async () => {
    let seen = ''
    const dyno = await rawDyno((head, socket) => {
      seen = head
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    })
    const shop = app([dyno.backend])
    const port = await router({'': shop.routed})
    const client = connect(port, '127.0.0.1')
    let answer = ''
    client.on('data', (chunk: Buffer) => (answer += chunk.toString()))
    // Written without an end: the router closes an HTTP/1.0 client's connection after its answer.
    client.write('GET /old HTTP/1.0\r\n\r\n')
    await new Promise((resolve) => client.on('close', resolve))
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nok$/)
    expect(seen.split('\r\n')[0]).toBe('GET /old HTTP/1.1')
    expect(seen.split('\r\n')).toContain(`Host: 127.0.0.1:${dyno.backend.port}`)
  })

  it('holds a request while the app boots, and sends it on once a dyno is up', async () => {
    const web = await echoDyno('web.1')
    const backends: Backend[] = []
    const shop = app([], {backends: () => backends, whyNoBackend: () => 'starting'})
    const port = await router({shop: shop.routed})
    const answer = get(port, 'shop')
    setTimeout(() => backends.push(web), 300)
    expect((await answer).status).toBe(200)
  })

  it('holds a WebSocket handshake while the app boots (or, locally, restarts), and passes it on once a dyno is up', async () => {
    const {backend} = await rawDyno((_head, socket) => socket.end('HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'))
    const backends: Backend[] = []
    const shop = app([], {backends: () => backends, whyNoBackend: () => 'starting'})
    const port = await router({shop: shop.routed})
    const answer = rawExchange(port, 'GET /ws HTTP/1.1\r\nHost: shop\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')
    setTimeout(() => backends.push(backend), 300)
    expect(await answer).toMatch(/^HTTP\/1\.1 426 /)
  })

  it('holds requests that come before its table is ready (an agent restoring its apps), instead of answering 404', async () => {
    const web = await echoDyno('web.1')
    const apps: Record<string, RoutedApp> = {}
    let ready!: () => void
    const front = new Router((host) => apps[host], {ready: new Promise<void>((resolve) => (ready = resolve))})
    const port = await front.listen(0, '127.0.0.1')
    closers.push(() => front.close())
    const answer = get(port, 'shop')
    setTimeout(() => {
      apps.shop = app([web]).routed
      ready()
    }, 200)
    expect((await answer).status).toBe(200)
  })

  it('streams an answer (SSE) to the client as it comes, before the dyno ends it', async () => {
    let finish!: () => void
    const done = new Promise<void>((resolve) => (finish = resolve))
    const {port: ssePort} = await dyno((_req, res) => {
      res.writeHead(200, {'content-type': 'text/event-stream'})
      res.write('data: first\n\n')
      void done.then(() => res.end('data: last\n\n'))
    })
    const shop = app([new Backend('web.1', ssePort)])
    const port = await router({shop: shop.routed})
    const chunks: string[] = []
    const ended = new Promise<void>((resolve) => {
      request({host: '127.0.0.1', port, headers: {host: 'shop'}}, (res) => {
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk.toString())
          // The first event arrived while the dyno still holds the response open.
          if (chunks.length === 1) finish()
        })
        res.on('end', resolve)
      }).end()
    })
    await ended
    expect(chunks[0]).toBe('data: first\n\n')
    expect(chunks.join('')).toBe('data: first\n\ndata: last\n\n')
  })

  it('keeps no dyno connection after a HEAD of a stream the dyno never ends; a client leaving mid-stream is H27 with status 499', async () => {
    const {port: ssePort} = await dyno((req, res) => {
      if (req.url !== '/events') return res.end('plain')
      res.writeHead(200, {'content-type': 'text/event-stream'})
      res.flushHeaders()
      const timer = setInterval(() => res.write('data: tick\n\n'), 50)
      res.on('close', () => clearInterval(timer))
    })
    const shop = app([new Backend('web.1', ssePort)], {firstByteTimeoutMs: () => 3000})
    const port = await router({shop: shop.routed})
    const head = await new Promise<number>((resolve, reject) => request({host: '127.0.0.1', port, method: 'HEAD', path: '/events', headers: {host: 'shop'}, agent: false}, (res) => resolve(res.statusCode!)).on('error', reject).end())
    expect(head).toBe(200)
    // Node's server answers nothing more on the HEAD's connection while its handler runs: the next request must not go there.
    expect(await get(port, 'shop', '/after')).toMatchObject({status: 200, body: 'plain'})
    // A client that leaves a stream midway.
    await new Promise<void>((resolve, reject) => {
      const req = request({host: '127.0.0.1', port, path: '/events', headers: {host: 'shop'}, agent: false}, (res) => res.once('data', () => (req.destroy(), resolve())))
      req.on('error', () => {})
      req.on('close', resolve)
      req.end()
      setTimeout(() => reject(new Error('no event came')), 2000)
    })
    await eventually(async () => shop.lines, (lines) => lines.some((line) => line.includes('code=H27')))
    expect(shop.lines.find((line) => line.includes('code=H27'))).toMatch(/^at=info code=H27 desc="Client Request Interrupted" method=GET path="\/events" .* status=499 /)
  })

  it('cuts an answer on which no byte moves for the idle window (H15): a dyno gone quiet midway, or a client that reads nothing', async () => {
    // A small answer is gathered whole before it goes: one that stalls has sent the client nothing, which gets the router's 503.
    const {backend: trickle} = await rawDyno((_head, socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nten bytes.'))
    const small = app([trickle])
    const smallPort = await router({small: small.routed}, {idleConnectionMs: 300})
    const page = await get(smallPort, 'small')
    expect([page.status, page.body]).toEqual([503, expect.stringContaining('Application error')])
    expect(small.lines).toEqual([expect.stringMatching(/^at=error code=H15 desc="Idle connection" method=GET .* status=503 /)])

    // Bytes moving the other way count too: an upload the dyno reads after answering its head.
    const {port: readerPort} = await dyno((req, res) => {
      res.writeHead(200, {'content-type': 'text/plain'})
      res.flushHeaders()
      let got = 0
      req.on('data', (chunk: Buffer) => (got += chunk.length))
      req.on('end', () => res.end(`got ${got}`))
    })
    const uploads = app([new Backend('web.1', readerPort)])
    const uploadPort = await router({uploads: uploads.routed}, {idleConnectionMs: 300})
    const uploaded = await new Promise<string>((resolve, reject) => {
      const req = request({host: '127.0.0.1', port: uploadPort, method: 'POST', headers: {host: 'uploads'}, agent: false}, (res) => {
        let text = ''
        res.on('data', (chunk: Buffer) => (text += chunk.toString()))
        res.on('end', () => resolve(text))
      })
      req.on('error', reject)
      let sent = 0
      const ticker = setInterval(() => {
        req.write('0123456789')
        if (++sent === 30) {
          clearInterval(ticker)
          req.end()
        }
      }, 20)
    })
    expect(uploaded).toBe('got 300')
    expect(uploads.lines[0]).toMatch(/^at=info /)

    // A dyno that streams a piece every 20 ms for 0.5 s is never idle; one that stops after its first piece is.
    let quietClosed!: () => void
    const quietGone = new Promise<void>((resolve) => (quietClosed = resolve))
    const {port: streamPort} = await dyno((req, res) => {
      res.writeHead(200, {'content-type': 'text/plain'})
      res.write('first\n')
      if (req.url === '/quiet') return void res.on('close', quietClosed)
      let sent = 1
      const ticker = setInterval(() => {
        if (++sent < 25) return void res.write('more\n')
        clearInterval(ticker)
        res.end('last\n')
      }, 20)
    })
    const shop = app([new Backend('web.1', streamPort)])
    const port = await router({shop: shop.routed}, {idleConnectionMs: 300})
    const streamed = await get(port, 'shop', '/streaming')
    expect(streamed.body).toBe(`first\n${'more\n'.repeat(23)}last\n`)
    expect(shop.lines[0]).toMatch(/^at=info method=GET path="\/streaming" .* status=200 /)

    const quiet = await rawExchange(port, 'GET /quiet HTTP/1.1\r\nHost: shop\r\n\r\n')
    expect(quiet).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n6\r\nfirst\n\r\n$/)
    await quietGone
    expect(shop.lines[1]).toMatch(/^at=error code=H15 desc="Idle connection" method=GET path="\/quiet" .* dyno=web\.1 .* status=200 bytes=6 protocol=http$/)

    // A client that reads nothing of a big answer: the dyno is held paused, then both are let go.
    let bigClosed!: (written: number) => void
    const bigGone = new Promise<number>((resolve) => (bigClosed = resolve))
    const piece = Buffer.alloc(1024 * 1024, 'x')
    const {port: bigPort} = await dyno((_req, res) => {
      let written = 0
      res.on('close', () => bigClosed(written))
      const pour = () => {
        while (written < 512 && !res.destroyed) if (!res.write(piece, () => {}) || ++written < 0) return void res.once('drain', pour)
      }
      pour()
    })
    const big = app([new Backend('web.1', bigPort)])
    const bigRouter = await router({big: big.routed}, {idleConnectionMs: 300, slowClientMs: 600})
    const reader = connect(bigRouter, '127.0.0.1')
    reader.on('error', () => {})
    reader.pause()
    reader.write('GET /big HTTP/1.1\r\nHost: big\r\n\r\n')
    // Far less than the 512 MiB it would have sent: it stopped when nobody read.
    expect(await bigGone).toBeLessThan(512)
    reader.destroy()
    expect(big.lines).toHaveLength(1)
    expect(big.lines[0]).toMatch(/^at=error code=H15 desc="Idle connection" method=GET path="\/big" .* status=200 /)
  })

  it('passes a large answer of known length through whole, for a request with a body and without', async () => {
    const big = Buffer.alloc(1024 * 1024, 'x')
    const {port: bigPort} = await dyno((req, res) => {
      req.resume()
      req.on('end', () => {
        res.setHeader('content-length', big.length)
        res.end(big)
      })
    })
    const shop = app([new Backend('web.1', bigPort)])
    const port = await router({shop: shop.routed})
    expect((await get(port, 'shop')).body.length).toBe(big.length)
    expect((await get(port, 'shop', '/', {}, 'with a body')).body.length).toBe(big.length)
    expect(shop.lines.map((line) => /bytes=(\d+)/.exec(line)?.[1])).toEqual([String(big.length), String(big.length)])
  })

  it('never lets a request hide another in its body (request smuggling)', async () => {
    const seen: {url: string; body: string}[] = []
    const {port: dynoPort} = await dyno((req, res) => {
      let body = ''
      req.on('data', (chunk: Buffer) => (body += chunk.toString()))
      req.on('end', () => {
        seen.push({url: req.url!, body})
        res.end('ok')
      })
    })
    const shop = app([new Backend('web.1', dynoPort)])
    const port = await router({shop: shop.routed})
    const hidden = 'GET /admin HTTP/1.1\r\nHost: shop\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n'
    const raw = async (text: string) => {
      const socket = connect(port, '127.0.0.1')
      socket.write(text)
      const answer = await new Promise<string>((resolve) => {
        let got = ''
        socket.on('data', (chunk: Buffer) => {
          got += chunk.toString()
          if (got.endsWith('ok')) resolve(got)
        })
      })
      socket.destroy()
      return answer
    }
    // A GET with a chunked body, and a Content-Length the Connection header tries to strip.
    await raw(`GET / HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n${hidden.length.toString(16)}\r\n${hidden}\r\n0\r\n\r\n`)
    await raw(`GET / HTTP/1.1\r\nHost: shop\r\nConnection: content-length\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}`)
    // A third request on the router's kept-alive connections would meet a hidden one, were there any.
    expect((await get(port, 'shop', '/last')).body).toBe('ok')
    expect(seen).toEqual([
      {url: '/', body: hidden},
      {url: '/', body: hidden},
      {url: '/last', body: ''},
    ])
  })

  it('counts the request timeout from the end of an upload, not its start', async () => {
    const {port: dynoPort} = await dyno((req, res) => {
      req.resume()
      req.on('end', () => res.end('stored'))
    })
    const shop = app([new Backend('web.1', dynoPort)], {firstByteTimeoutMs: () => 300})
    const port = await router({shop: shop.routed})
    const answer = await new Promise<{status: number; body: string}>((resolve, reject) => {
      const req = request({host: '127.0.0.1', port, method: 'POST', headers: {host: 'shop', 'content-length': '10'}, agent: false}, (res) => {
        let body = ''
        res.on('data', (chunk: Buffer) => (body += chunk.toString()))
        res.on('end', () => resolve({status: res.statusCode!, body}))
      })
      req.on('error', reject)
      req.write('12345')
      // The upload takes longer than the request timeout.
      setTimeout(() => req.end('67890'), 600)
    })
    expect(answer).toEqual({status: 200, body: 'stored'})

    // A dyno that reads a big upload slowly for longer than the request timeout, but never stops
    // for long, is not timed out, chunked or not (then it reads on at full speed).
    const {port: slowPort} = await dyno((req, res) => {
      let got = 0
      const started = Date.now()
      req.on('data', (chunk: Buffer) => {
        got += chunk.length
        if (Date.now() - started > 1500) return
        req.pause()
        setTimeout(() => req.resume(), 10)
      })
      req.on('end', () => res.end(`got ${got}`))
    })
    const slow = app([new Backend('web.1', slowPort)], {firstByteTimeoutMs: () => 1000})
    const slowRouter = await router({slow: slow.routed})
    const piece = Buffer.alloc(256 * 1024, 'u')
    for (const chunked of [true, false]) {
      const stored = await new Promise<string>((resolve, reject) => {
        const headers: Record<string, string> = {host: 'slow', ...(chunked ? {} : {'content-length': String(64 * piece.length)})}
        const req = request({host: '127.0.0.1', port: slowRouter, method: 'POST', headers, agent: false}, (res) => {
          let body = ''
          res.on('data', (chunk: Buffer) => (body += chunk.toString()))
          res.on('end', () => resolve(body))
        })
        req.on('error', reject)
        for (let index = 0; index < 64; index++) req.write(piece)
        req.end()
      })
      expect(stored, slow.lines.join('\n')).toBe(`got ${64 * piece.length}`)
    }
    expect(slow.lines.map((line) => line.slice(0, 8))).toEqual(['at=info ', 'at=info '])
  })

  it('passes back a refused WebSocket handshake and sends nothing more to the dyno', async () => {
    const {server, port: wsPort} = await dyno((_req, res) => res.end())
    let after = ''
    let handshakes = 0
    server.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
      handshakes++
      socket.write('HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n')
      socket.on('data', (chunk: Buffer) => (after += chunk.toString()))
      socket.on('end', () => socket.end())
    })
    const shop = app([new Backend('web.1', wsPort)])
    const port = await router({shop: shop.routed})
    // A request sent with the handshake, in the same write, is not the dyno's to read either.
    expect(await rawExchange(port, 'GET /chat HTTP/1.1\r\nHost: shop\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /admin HTTP/1.1\r\nHost: shop\r\n\r\n')).toMatch(/^HTTP\/1\.1 426 /)
    const socket = connect(port, '127.0.0.1')
    socket.write('GET /chat HTTP/1.1\r\nHost: shop\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')
    const answer = await new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString())))
    expect(answer).toMatch(/^HTTP\/1\.1 426 /)
    // What the client sends next goes nowhere: the dyno answered no upgrade.
    socket.write('GET /admin HTTP/1.1\r\nHost: shop\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n')
    await new Promise((resolve) => setTimeout(resolve, 200))
    socket.destroy()
    expect(handshakes).toBe(2)
    expect(after).toBe('')
    expect(shop.lines[0]).toMatch(/status=426/)
  })

  it('closes open WebSockets when it closes', async () => {
    const {server, port: wsPort} = await dyno((_req, res) => res.end())
    server.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
      socket.on('end', () => socket.end())
    })
    const front = new Router(() => app([new Backend('web.1', wsPort)]).routed)
    const port = await front.listen(0, '127.0.0.1')
    const socket = await new Promise<Socket>((resolve, reject) => {
      request({host: '127.0.0.1', port, headers: {host: 'shop', connection: 'Upgrade', upgrade: 'websocket'}})
        .on('upgrade', (_res: IncomingMessage, upgraded: Socket) => resolve(upgraded))
        .on('error', reject)
        .end()
    })
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    await front.close()
    await closed
  })

  it('proxies a WebSocket upgrade both ways, and a drain closes it at its deadline', async () => {
    const {server, port: wsPort} = await dyno((_req, res) => res.end())
    server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Saw-Forwarded: ${req.headers['x-forwarded-for']}\r\n\r\n`)
      socket.on('data', (chunk: Buffer) => socket.write(`echo ${chunk.toString()}`))
      socket.on('end', () => socket.end())
    })
    const web = new Backend('web.1', wsPort)
    const shop = app([web])
    const port = await router({shop: shop.routed})
    const {socket, response} = await new Promise<{socket: Socket; response: IncomingMessage}>((resolve, reject) => {
      request({host: '127.0.0.1', port, headers: {host: 'shop', connection: 'Upgrade', upgrade: 'websocket'}})
        .on('upgrade', (res: IncomingMessage, upgraded: Socket) => resolve({socket: upgraded, response: res}))
        .on('error', reject)
        .end()
    })
    expect(response.headers['x-saw-forwarded']).toBe('127.0.0.1')
    const echoed = new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString())))
    socket.write('hello')
    expect(await echoed).toBe('echo hello')
    expect(shop.lines[0]).toMatch(/status=101/)
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    await web.drain(Date.now() + 200)
    await closed
    expect(web.idle).toBe(true)
  })

  it('closes a WebSocket on which neither side has sent anything for the idle window (H15), and keeps one in use', async () => {
    const {server, port: wsPort} = await dyno((_req, res) => res.end())
    server.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
      socket.on('data', (chunk: Buffer) => socket.write(chunk))
      socket.on('error', () => {})
      socket.on('end', () => socket.end())
    })
    const shop = app([new Backend('web.1', wsPort)])
    const port = await router({shop: shop.routed}, {idleConnectionMs: 300})
    const socket = await new Promise<Socket>((resolve, reject) => {
      request({host: '127.0.0.1', port, headers: {host: 'shop', connection: 'Upgrade', upgrade: 'websocket'}})
        .on('upgrade', (_res: IncomingMessage, upgraded: Socket) => resolve(upgraded))
        .on('error', reject)
        .end()
    })
    let closed = false
    const gone = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    void gone.then(() => (closed = true))
    let echoes = 0
    socket.on('data', () => echoes++)
    // Pings every 20 ms for 0.6 s, twice the window: the tunnel stays.
    for (let ping = 0; ping < 30; ping++) {
      socket.write('ping')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    expect(closed).toBe(false)
    expect(echoes).toBeGreaterThan(0)
    await gone
    expect(shop.lines).toHaveLength(2)
    expect(shop.lines[0]).toMatch(/^at=info .* status=101 /)
    expect(shop.lines[1]).toMatch(/^at=error code=H15 desc="Idle connection" method=GET path="\/" .* status=101 /)
  })

  it('drains a dyno: waits for its requests in flight, then resolves', async () => {
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    const web = new Backend('web.1', (await dyno((_req, res) => void held.then(() => res.end('done')))).port)
    const shop = app([web])
    const port = await router({shop: shop.routed})
    const inFlight = get(port, 'shop')
    while (web.active === 0) await new Promise((resolve) => setTimeout(resolve, 10))
    let drained = false
    const drain = web.drain(Date.now() + 10_000).then(() => (drained = true))
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(drained).toBe(false)
    release()
    expect((await inFlight).body).toBe('done')
    await drain
    expect(drained).toBe(true)
  })
})
