import type {IncomingMessage} from 'node:http'

import type {Agent as UndiciAgent, Dispatcher} from 'undici'

import {Attempt, type AttemptParts, type Outcome} from './attempt.js'

/** A body of known length up to this size is sent with its head in one write. */
export const SMALL_BODY_BYTES = 16 * 1024

/** Methods a router may send again when a connection broke before any answer (RFC 9110 §9.2.2). */
const RETRY_SAFE = new Set(['GET', 'HEAD', 'OPTIONS'])

/** Hop-by-hop headers of a dyno's answer, never passed to the client. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

/**
 * The headers of a dyno's answer that go on to the client: all but hop-by-hop ones and those its
 * Connection header names. A new object (deleting keys would make every answer's object slow).
 */
function endToEnd(headers: Record<string, string | string[] | undefined>): Record<string, string | string[] | undefined> {
  const connection = headers.connection
  // Node servers send `Connection: keep-alive`, which names nothing beyond the hop-by-hop set.
  const named = connection === undefined || connection === 'keep-alive' ? undefined : String(connection).toLowerCase().split(',').map((token) => token.trim())
  const out: Record<string, string | string[] | undefined> = {}
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || named?.includes(name)) continue
    // A header named __proto__ stays a header (as undici keeps it), not the object's prototype.
    if (name === '__proto__') Object.defineProperty(out, name, {value: headers[name], enumerable: true, writable: true, configurable: true})
    else out[name] = headers[name]
  }
  return out
}

/**
 * Sends a request without a body (most of them) to a dyno through undici's connection pools, which
 * cost less per request than node:http's client, and the answer back.
 */
export function sendBodyless(req: IncomingMessage, headers: string[], pools: UndiciAgent, parts: AttemptParts): Promise<Outcome> {
  const {backend, res, record} = parts
  let controller: Dispatcher.DispatchController | undefined
  const attempt = new Attempt(parts, () => controller?.abort(new Error('no answer within the request timeout')))
  const chunks: Buffer[] = []
  let small = false
  pools.dispatch(
    {origin: backend.origin, path: req.url ?? '/', method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers, headersTimeout: 0, bodyTimeout: 0},
    {
      onRequestStart: (started) => {
        controller = started
        attempt.connect()
      },
      onResponseStart: (started, statusCode, answerHeaders, statusMessage) => {
        controller = started
        if (statusCode < 200) return
        attempt.respond(statusCode)
        const length = Number(answerHeaders['content-length'] ?? -1)
        small = length >= 0 && length <= SMALL_BODY_BYTES
        res.writeHead(statusCode, statusMessage, endToEnd(answerHeaders) as never)
        // A streamed answer (SSE, chunked) reaches the client as it comes, its head at once.
        if (length < 0) res.flushHeaders()
      },
      onResponseData: (started, chunk) => {
        record.bytes += chunk.length
        if (small) chunks.push(chunk)
        else if (!res.write(chunk)) {
          started.pause()
          res.once('drain', () => started.resume())
        }
      },
      onResponseEnd: () => {
        // A small body of known length goes out with its head in one write.
        if (small) res.end(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))
        else res.end()
        res.once('finish', () => attempt.settle('done'))
      },
      onResponseError: (_started, error: Error & {code?: string}) => {
        if (attempt.settled) return
        if (attempt.responded) return attempt.settle('done', 'H18')
        if (!attempt.connected && error.code === 'ECONNREFUSED') return attempt.settle('refused')
        // A kept-alive connection the dyno had closed: a request that is safe to send twice is.
        if (attempt.connected && error.code === 'UND_ERR_SOCKET' && RETRY_SAFE.has(req.method ?? '')) return attempt.settle('reset')
        attempt.settle('done', 'H13')
      },
    },
  )
  // The client went away first: the dyno's request is dropped too.
  res.once('close', () => {
    if (res.writableFinished || attempt.settled) return
    attempt.settle('done', 'H27')
    controller?.abort(new Error('the client went away'))
  })
  return attempt.done
}
