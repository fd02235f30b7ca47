import {AppError} from './app-error.js'
import type {Route} from './api-route.js'
import {DEFAULT_MEMORY_LINES, isLogSource, type AppLog, type LogFilter} from './app-log.js'

const DEFAULT_LINES = 100
/** No more than the memory of an app's log holds by default. */
const MAX_LINES = DEFAULT_MEMORY_LINES
/** A process type (`web`) or one dyno (`web.1`). */
/** A process type (Procfile names) or a dyno of one: `web`, `web.1`. */
const PS = /^[A-Za-z0-9_-]+(\.\d+)?$/
/** `?tail` alone asks for a tail too. */
const TAIL_VALUES = new Map([
  ['', true],
  ['1', true],
  ['true', true],
  ['0', false],
  ['false', false],
])

interface LogQuery {
  lines: number
  tail: boolean
  filter: LogFilter
}

/**
 * `GET /apps/:app/log?lines=&ps=&source=&tail=`: the app's recent log lines as text, one a line;
 * with `tail`, the answer stays open and new lines follow until the client goes away.
 */
export function logRoutes(logFor: (app: string) => AppLog | Promise<AppLog>): Route[] {
  return [
    [
      'GET',
      /^\/apps\/([^/]+)\/log$/,
      async ({params, query, res}) => {
        const {lines, tail, filter} = parseLogQuery(query)
        const log = await logFor(params[0]!)
        const recent = log.recent({lines, ...filter}).map((line) => `${line}\n`)
        res.writeHead(200, {'content-type': 'text/plain; charset=utf-8'})
        if (!tail) {
          res.end(recent.join(''))
          return 'answered'
        }
        // The client sees the answer start even when there is nothing to show yet.
        res.flushHeaders()
        if (recent.length > 0) res.write(recent.join(''))
        // Recent lines and live ones join without a gap: both happen before any other line is appended.
        // The subscription ends itself when the response closes, as it does when the client disconnects.
        log.subscribe(filter, res)
        return 'answered'
      },
    ],
  ]
}

function parseLogQuery(query: URLSearchParams): LogQuery {
  const tail = TAIL_VALUES.get(query.get('tail') ?? 'false')
  if (tail === undefined) throw new AppError(422, 'tail must be 1 or true (or 0 or false)')
  // A tail may ask for no past lines at all: only what comes from now on.
  const lines = query.get('lines') ?? String(DEFAULT_LINES)
  const least = tail ? 0 : 1
  if (!/^\d+$/.test(lines) || Number(lines) < least || Number(lines) > MAX_LINES) throw new AppError(422, `lines must be a whole number from ${least} to ${MAX_LINES}`)
  const ps = query.get('ps') ?? undefined
  if (ps !== undefined && !PS.test(ps)) throw new AppError(422, 'ps must be a process type like web or a dyno like web.1')
  const source = query.get('source') ?? undefined
  if (source !== undefined && !isLogSource(source)) throw new AppError(422, 'source must be app, agent or router')
  return {lines: Number(lines), tail, filter: {ps, source}}
}
