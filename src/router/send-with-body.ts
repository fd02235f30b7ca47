import {request, type Agent, type IncomingMessage} from 'node:http'
import type {Socket} from 'node:net'

import {Attempt, type AttemptParts, type Outcome} from './attempt.js'
import {responseHeaders} from './forwarded-headers.js'
import {SMALL_BODY_BYTES} from './send-bodyless.js'

/**
 * Sends a request that has a body to a dyno with node:http, and the answer back. The body is read
 * only once the dyno has accepted the connection, so a refused connection loses none of it and the
 * request can go to another dyno.
 */
export function sendWithBody(req: IncomingMessage, headers: string[], agent: Agent, parts: AttemptParts): Promise<Outcome> {
  const {backend, res, record} = parts
  const upstream = request({host: backend.host, port: backend.port, method: req.method, path: req.url, headers: headers as never, agent, setHost: false})
  const attempt = new Attempt(parts, () => upstream.destroy(), {afterUpload: true})
  upstream.once('socket', (socket: Socket) => {
    const go = () => {
      attempt.connect()
      req.pipe(upstream)
    }
    if (socket.connecting) socket.once('connect', go)
    else go()
  })
  upstream.once('finish', () => attempt.sent())
  upstream.once('response', (answer) => {
    attempt.respond(answer.statusCode ?? 502)
    res.writeHead(record.status, answer.statusMessage, responseHeaders(answer.rawHeaders, answer.headers.connection) as never)
    const length = Number(answer.headers['content-length'] ?? -1)
    if (length >= 0 && length <= SMALL_BODY_BYTES) {
      // A small body of known length goes out with its head in one write.
      const chunks: Buffer[] = []
      answer.on('data', (chunk: Buffer) => chunks.push(chunk))
      answer.once('end', () => {
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
        record.bytes = body.length
        res.end(body)
      })
    } else {
      // A streamed answer (SSE, chunked) reaches the client as it comes, its head at once.
      if (length < 0) res.flushHeaders()
      answer.on('data', (chunk: Buffer) => (record.bytes += chunk.length))
      answer.pipe(res)
    }
    answer.once('aborted', () => attempt.settle('done', 'H18'))
    answer.on('error', () => attempt.settle('done', 'H18'))
    res.once('finish', () => attempt.settle('done'))
  })
  upstream.on('error', (error: NodeJS.ErrnoException) => {
    if (attempt.responded) return attempt.settle('done', 'H18')
    if (!attempt.connected && error.code === 'ECONNREFUSED') return attempt.settle('refused')
    attempt.settle('done', 'H13')
  })
  // The client went away first: the dyno's request is dropped too.
  res.once('close', () => {
    if (res.writableFinished || attempt.settled) return
    attempt.settle('done', 'H27')
    upstream.destroy()
  })
  return attempt.done
}
