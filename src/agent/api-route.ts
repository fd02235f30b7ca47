import type {IncomingMessage, ServerResponse} from 'node:http'

import {z} from 'zod'

import {AppError} from './app-error.js'

/** The largest JSON body the API reads. */
export const MAX_BODY_BYTES = 1024 * 1024

export interface RouteRequest {
  req: IncomingMessage
  res: ServerResponse
  /** Reads the body as JSON (at most MAX_BODY_BYTES). */
  body: () => Promise<unknown>
  /** The `Dev-User` header: who releases are recorded as made by. */
  user: string
  /** The pattern's capture groups, URI-decoded. */
  params: string[]
  /** The query string. */
  query: URLSearchParams
}

/** A JSON answer, or 'answered' when the handler wrote the response itself (streams, upgrades). */
export type RouteResult = {status?: number; json: unknown} | 'answered'

export type Route = [method: string, pattern: RegExp, handler: (request: RouteRequest) => Promise<RouteResult>]

/** Heroku's error ids for each status the API answers with. */
const ERROR_IDS: Record<number, string> = {400: 'bad_request', 404: 'not_found', 405: 'method_not_allowed', 409: 'conflict', 413: 'payload_too_large', 422: 'invalid_params', 500: 'internal', 507: 'insufficient_storage'}

export function errorId(status: number): string {
  return ERROR_IDS[status] ?? 'bad_request'
}

/** The request's URL; one that does not parse is the client's mistake (400), not the agent's. */
export function requestUrl(req: IncomingMessage): URL {
  try {
    return new URL(req.url ?? '/', 'http://agent')
  } catch {
    throw new AppError(400, `malformed request URL: ${req.url}`)
  }
}

/** A captured path segment, URI-decoded; a bad percent-encoding (`%E0`) is a 400. */
export function decodePathParam(param: string): string {
  try {
    return decodeURIComponent(param)
  } catch {
    throw new AppError(400, `malformed percent-encoding in the path: ${param}`)
  }
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return Array.isArray(value) ? value[0] : value
}

/**
 * Who made a request (`Dev-User`, percent-encoded by clients so any name fits a header): what
 * releases and log lines are recorded as made by. Never trusted for anything else.
 */
export function requestUser(req: IncomingMessage): string {
  const raw = header(req, 'dev-user') ?? 'unknown'
  let user: string
  try {
    user = decodeURIComponent(raw)
  } catch {
    user = raw
  }
  // One line in the log, whatever was sent.
  return user.replace(/[\u0000-\u001f\u007f]/g, '?').slice(0, 100) || 'unknown'
}

/** Validates a request body; a mismatch is a 422 saying where. */
export function parseBody<T>(schema: z.ZodType<T>, value: unknown): T {
  // zod drops a "__proto__" key from a record without a word, so {"__proto__": "x"} as config vars
  // would be a 200 that set nothing: refused instead, whatever its depth.
  if (hasProtoKey(value)) throw new AppError(422, 'invalid request body: "__proto__" cannot be a key')
  const result = schema.safeParse(value)
  if (result.success) return result.data
  const issue = result.error.issues[0]!
  const where = issue.path.length > 0 ? ` at ${issue.path.join('.')}` : ''
  throw new AppError(422, `invalid request body${where}: ${issue.message}`)
}

/** True when an object anywhere in the value has an own "__proto__" key (walked without recursion: bodies may nest deep). */
function hasProtoKey(value: unknown): boolean {
  const stack = [value]
  while (stack.length > 0) {
    const next = stack.pop()
    if (typeof next !== 'object' || next === null) continue
    if (Object.hasOwn(next, '__proto__')) return true
    for (const child of Object.values(next)) stack.push(child)
  }
  return false
}

const STRICT_UTF8 = new TextDecoder('utf-8', {fatal: true})

export async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY_BYTES) throw new AppError(413, `request body over ${MAX_BODY_BYTES} bytes`)
    chunks.push(chunk)
  }
  let text: string
  try {
    // JSON is UTF-8: a lenient decode would turn bad bytes into U+FFFD and store that in config.
    text = STRICT_UTF8.decode(Buffer.concat(chunks))
  } catch {
    throw new AppError(400, 'request body is not valid UTF-8')
  }
  if (text.trim() === '') return {}
  try {
    return JSON.parse(text)
  } catch {
    throw new AppError(400, 'request body is not JSON')
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`
  res.writeHead(status, {'content-type': 'application/json', 'content-length': Buffer.byteLength(text)})
  res.end(text)
}
