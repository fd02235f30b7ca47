// Floors for bench/router.mjs: the least work a proxy written in Node can do on this machine, so
// the router's figures can be read against what Node itself costs here, apart from the router's
// own work. Requests go round-robin to the dynos on kept-alive raw TCP connections, and nothing
// else is done: no checks, no headers added or removed, no log, no timeouts, no retries. The
// client side is a raw TCP server (the floor for any Node proxy), or with --node-http Node's HTTP
// server (what node:http itself costs a proxy). It handles only what the bench sends
// (GET without a body, answers with a Content-Length), one request at a time per client
// connection. Not a proxy for any other use, and not a bench script itself.
// Usage: node bench/lib/bare-proxy.mjs LISTEN_PORT DYNO_PORT... [--node-http]
import {createServer as createHttpServer} from 'node:http'
import {connect, createServer} from 'node:net'

const nodeHttp = process.argv.includes('--node-http')
const [listenPort, ...dynoPorts] = process.argv.slice(2).filter((arg) => arg !== '--node-http').map(Number)
/** Idle kept-alive connections to each dyno. */
const idle = dynoPorts.map(() => [])
let turn = 0
const HEAD_END = '\r\n\r\n'

/** A new connection to a dyno; the dyno closes idle ones after 5 s, and those leave the idle list. */
function open(index) {
  const upstream = connect({port: dynoPorts[index], host: '127.0.0.1', noDelay: true})
  upstream.on('error', () => {})
  upstream.once('close', () => {
    const at = idle[index].indexOf(upstream)
    if (at !== -1) idle[index].splice(at, 1)
  })
  return upstream
}

/** Sends one request head to the next dyno and calls `answered` with its whole answer. */
function forward(head, answered) {
  const index = turn++ % dynoPorts.length
  let upstream = idle[index].pop()
  // Idle past 4 s, the dyno (which closes them at 5 s) may be closing it: a new one instead.
  while (upstream !== undefined && Date.now() - upstream.idleSince > 4000) {
    upstream.destroy()
    upstream = idle[index].pop()
  }
  upstream ??= open(index)
  let pending = Buffer.alloc(0)
  const onData = (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    const end = pending.indexOf(HEAD_END)
    if (end === -1) return
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(pending.latin1Slice(0, end))?.[1] ?? 0)
    if (pending.length < end + 4 + length) return
    upstream.off('data', onData)
    upstream.idleSince = Date.now()
    idle[index].push(upstream)
    answered(pending)
  }
  upstream.on('data', onData)
  upstream.write(head, 'latin1')
}

/** The raw client side: request heads cut from the stream, answers written back as they came. */
function rawServer() {
  return createServer({noDelay: true}, (client) => {
    client.on('error', () => {})
    let pending = ''
    let busy = false
    const next = () => {
      const end = pending.indexOf(HEAD_END)
      if (busy || end === -1) return
      busy = true
      const head = pending.slice(0, end + 4)
      pending = pending.slice(end + 4)
      forward(head, (answer) => {
        busy = false
        client.write(answer)
        next()
      })
    }
    client.on('data', (chunk) => {
      pending += chunk.latin1Slice(0, chunk.length)
      next()
    })
  })
}

/** The node:http client side: the head rebuilt from rawHeaders, the answer's head and body passed to writeHead and end. */
function httpServer() {
  return createHttpServer({noDelay: true}, (req, res) => {
    let head = `${req.method} ${req.url} HTTP/1.1\r\n`
    for (let index = 0; index < req.rawHeaders.length; index += 2) head += `${req.rawHeaders[index]}: ${req.rawHeaders[index + 1]}\r\n`
    forward(`${head}\r\n`, (answer) => {
      const end = answer.indexOf(HEAD_END)
      const lines = answer.latin1Slice(0, end).split('\r\n')
      const headers = []
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':')
        const name = line.slice(0, colon)
        if (!/^(connection|keep-alive)$/i.test(name)) headers.push(name, line.slice(colon + 1).trim())
      }
      res.writeHead(Number(lines[0].slice(9, 12)), headers)
      res.end(answer.subarray(end + 4))
    })
  })
}

;(nodeHttp ? httpServer() : rawServer()).listen(listenPort, '127.0.0.1', () => console.log('listening'))
