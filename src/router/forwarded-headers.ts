import {randomUUID} from 'node:crypto'

import {withoutOws} from './message-reader.js'
import type {RequestHead} from './request-reader.js'

/** Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

/** Set by the router alone: a client's values are dropped, never taken as the router's own. */
const ROUTER_SET = new Set(['x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-host', 'x-request-id', 'x-request-start', 'via'])

/** What a Connection header may never strip: the request's framing and its Host. */
const NEVER_NAMED = new Set(['host', 'content-length', 'transfer-encoding'])

const NAMES_NOTHING: ReadonlySet<string> = new Set()

/** A client's request id is kept when it is sane (Heroku's rule); anything else gets a new one. */
const SANE_REQUEST_ID = /^[A-Za-z0-9+/=_-]{20,200}$/

export function requestIdOf(request: RequestHead): string {
  const given = request.requestId
  return given !== undefined && SANE_REQUEST_ID.test(given) ? given : randomUUID()
}

/** What the router knows about the connection a request came on. */
export interface ClientSide {
  requestId: string
  /** The peer's address (what `fwd=` logs and X-Forwarded-For gets appended). */
  clientIp: string
  /** The port the router took the request on. */
  port: number
  startedAt: number
}

/**
 * The request's head for the dyno, request line to empty line, as latin1 text: the headers in the
 * client's order and spelling, hop-by-hop ones (and those the Connection header names) removed,
 * X-Forwarded-For (and a client's Forwarded) appended to, the router's own headers set, and a Host (`fallbackHost`) for an
 * HTTP/1.0 request without one. `upgrade` keeps Connection and Upgrade (a WebSocket handshake
 * needs them). The request reader has already refused anything in the method, target and headers
 * that could break the framing, and gives their bytes as latin1, so they reach the dyno unchanged.
 */
export function forwardedHead(request: RequestHead, client: ClientSide, fallbackHost: string, {upgrade = false} = {}): string {
  const connection = request.connection
  // Most requests carry no Connection header, or one that names only hop-by-hop headers.
  const named = connection === undefined || connection === 'keep-alive' ? NAMES_NOTHING : new Set(
    connection
      .toLowerCase()
      .split(',')
      .map((token) => withoutOws(token))
      .filter((token) => token !== '' && !NEVER_NAMED.has(token) && !(upgrade && token === 'upgrade')),
  )
  let head = `${request.method} ${request.target} HTTP/1.1\r\n`
  let forwardedFor: string | undefined
  let forwarded: string | undefined
  let via: string | undefined
  const raw = request.headers
  for (let index = 0; index < raw.length; index += 2) {
    const name = raw[index]!
    const value = raw[index + 1]!
    const lower = name.toLowerCase()
    if (lower === 'x-forwarded-for') {
      forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`
      continue
    }
    if (lower === 'forwarded') {
      forwarded = forwarded === undefined ? value : `${forwarded}, ${value}`
      continue
    }
    if (lower === 'via') via = via === undefined ? value : `${via}, ${value}`
    if (ROUTER_SET.has(lower) || named.has(lower)) continue
    if (HOP_BY_HOP.has(lower) && !(upgrade && (lower === 'connection' || lower === 'upgrade'))) continue
    head += `${name}: ${value}\r\n`
  }
  // HTTP/1.0 clients may send no Host; a dyno's HTTP/1.1 server needs one.
  if (request.host === undefined) head += `Host: ${fallbackHost}\r\n`
  // A body of unknown length goes on chunked whatever the method (sendRequest encodes it by this
  // header): written raw, a GET's body would be read by the dyno as a second request. The client's
  // codings are kept (`gzip, chunked`): the request reader undoes only the last, chunked, which the
  // router does again.
  if (request.transferEncoding !== undefined) head += `Transfer-Encoding: ${request.transferEncoding}\r\n`
  // A client's Forwarded (RFC 7239) is its claim: the router's own element goes last, as with
  // X-Forwarded-For, so an app that reads it takes the last one (an IPv6 peer quoted in brackets).
  if (forwarded !== undefined) head += `Forwarded: ${forwarded}, for=${client.clientIp.includes(':') ? `"[${client.clientIp}]"` : client.clientIp};proto=http\r\n`
  const version = request.http11 ? '1.1' : '1.0'
  return (
    `${head}X-Request-Id: ${client.requestId}\r\n` +
    `X-Forwarded-For: ${forwardedFor === undefined ? client.clientIp : `${forwardedFor}, ${client.clientIp}`}\r\n` +
    `X-Forwarded-Proto: http\r\nX-Forwarded-Port: ${client.port}\r\nX-Request-Start: t=${client.startedAt}\r\n` +
    `Via: ${via === undefined ? `${version} dev-router` : `${via}, ${version} dev-router`}\r\n\r\n`
  )
}

/** A dyno's response headers for the client: hop-by-hop headers removed, the rest as they came. */
export function responseHeaders(raw: readonly string[], connection: string | undefined): string[] {
  // Node servers send `Connection: keep-alive`, which names nothing beyond the hop-by-hop set.
  const named =
    connection === undefined || connection === 'keep-alive'
      ? NAMES_NOTHING
      : new Set(
          connection
            .toLowerCase()
            .split(',')
            .map((token) => withoutOws(token)),
        )
  const out: string[] = []
  for (let index = 0; index < raw.length; index += 2) {
    const lower = raw[index]!.toLowerCase()
    if (HOP_BY_HOP.has(lower) || named.has(lower)) continue
    out.push(raw[index]!, raw[index + 1]!)
  }
  return out
}

/** The peer address without the IPv4-mapped prefix (`::ffff:203.0.113.9` → `203.0.113.9`). */
export function peerAddress(address: string | undefined): string {
  if (address === undefined) return 'unknown'
  return address.startsWith('::ffff:') ? address.slice(7) : address
}
