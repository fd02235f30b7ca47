import {ROUTER_ERRORS, type RouterCode} from './router-errors.js'

/** What one request through the router was, for its log line. */
export interface RoutedRequest {
  method: string
  path: string
  host: string
  requestId: string
  fwd: string
  dyno: string | undefined
  connectMs: number
  serviceMs: number
  status: number
  bytes: number
}

/**
 * Heroku's router line: `at=info method=GET path="/a?b=1" host=… request_id=… fwd="…" dyno=web.2
 * connect=0ms service=12ms status=200 bytes=512 protocol=http`, with `code=` and `desc=` after
 * `at=` for the router's own answers. Client-supplied values are quoted or cleaned, so a request
 * cannot forge fields or lines.
 */
export function routerLogLine(request: RoutedRequest, code?: RouterCode): string {
  // One template, no intermediate array or copy of the record: this runs once per request.
  const at = code === undefined ? 'at=info' : `at=${ROUTER_ERRORS[code].level} code=${code} desc="${ROUTER_ERRORS[code].desc}"`
  return (
    `${at} method=${token(request.method)} path=${quoted(clipped(request.path))} host=${token(request.host)}` +
    ` request_id=${token(request.requestId)} fwd=${quoted(request.fwd)} dyno=${request.dyno ?? ''}` +
    ` connect=${Math.round(request.connectMs)}ms service=${Math.round(request.serviceMs)}ms status=${request.status} bytes=${request.bytes} protocol=http`
  )
}

/**
 * The most of a path a line shows. A request head may hold a path of up to 16 KiB, and a log entry
 * longer than MAX_ENTRY_BYTES is split: the rest of such a path would begin a `router:` line of its own.
 */
const PATH_CHARS = 2000

/** The path as logged: its first PATH_CHARS characters, then `...` if there was more. */
function clipped(path: string): string {
  return path.length <= PATH_CHARS ? path : `${path.slice(0, PATH_CHARS)}...`
}

/** What quoted() changes: most values have none of it (one line per request: checked before any copy is made). */
const UNQUOTABLE = /[\\"\u0000-\u001f\u007f-\u00ff]/

/**
 * A value in quotes, backslashes and quotes escaped, control characters dropped. A request's path
 * comes as its bytes read one per character (latin1): bytes past ASCII are read again as the
 * UTF-8 they almost always are, so `/café` is logged as such rather than as `/cafÃ©`.
 */
function quoted(value: string): string {
  if (!UNQUOTABLE.test(value)) return `"${value}"`
  const text = /[\u0080-\u00ff]/.test(value) ? Buffer.from(value, 'latin1').toString('utf8') : value
  return `"${text.replace(/[\\"]/g, (char) => `\\${char}`).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '')}"`
}

/** What token() drops. */
const NOT_TOKEN = /[^\x21-\x7e]|"/

/** A bare value: anything that could break the key=value form is dropped. */
function token(value: string): string {
  if (value.length <= 255 && !NOT_TOKEN.test(value)) return value
  return value.replace(/[^\x21-\x7e]|"/g, '').slice(0, 255)
}
