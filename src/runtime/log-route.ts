import type {Writable} from 'node:stream'

import {AppError} from '../agent/app-error.js'
import type {Route} from '../agent/api-route.js'
import {DEFAULT_MEMORY_LINES} from '../agent/app-log.js'
import type {LogFilter} from './log-filter.js'

const DEFAULT_LINES = 100
/** No more than the memory of a log holds by default. */
const MAX_LINES = DEFAULT_MEMORY_LINES
/** A process type (Procfile names) or one dyno or process of it: `web`, `web.1`. */
const PS = /^[A-Za-z0-9_-]+(\.\d+)?$/
/** `?tail` alone asks for a tail too. */
const TAIL_VALUES = new Map([
  ['', true],
  ['1', true],
  ['true', true],
  ['0', false],
  ['false', false],
])

/** A log the route reads: an app's on a host (AppLog), or a dev start's (LocalLog). */
export interface LogReader<Source extends string> {
  recent(options: {lines: number} & LogFilter<Source>): string[]
  subscribe(filter: LogFilter<Source>, out: Writable): () => void
}

/** What differs between the agent's log route and dev start's. */
export interface LogRouteOptions<Source extends string> {
  /** The `source` values the log has. */
  sources: readonly Source[]
  /** What a `web.1` is called there (`dyno`, `process`), for the 422 of a bad `ps`. */
  processNoun: string
}

/**
 * `GET /apps/:app/log?lines=&ps=&source=&tail=` on `pattern`: the recent log lines as text, one a
 * line; with `tail`, the answer stays open and new lines follow until the client goes away.
 * `logOf` finds the log from the pattern's captures.
 */
export function logRoute<Source extends string>(pattern: RegExp, options: LogRouteOptions<Source>, logOf: (params: string[]) => LogReader<Source> | Promise<LogReader<Source>>): Route {
  return [
    'GET',
    pattern,
    async ({params, query, res}) => {
      const {lines, tail, filter} = parseLogQuery(query, options)
      const log = await logOf(params)
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
  ]
}

function parseLogQuery<Source extends string>(query: URLSearchParams, {sources, processNoun}: LogRouteOptions<Source>): {lines: number; tail: boolean; filter: LogFilter<Source>} {
  const tail = TAIL_VALUES.get(query.get('tail') ?? 'false')
  if (tail === undefined) throw new AppError(422, 'tail must be 1 or true (or 0 or false)')
  // A tail may ask for no past lines at all: only what comes from now on.
  const lines = query.get('lines') ?? String(DEFAULT_LINES)
  const least = tail ? 0 : 1
  if (!/^\d+$/.test(lines) || Number(lines) < least || Number(lines) > MAX_LINES) throw new AppError(422, `lines must be a whole number from ${least} to ${MAX_LINES}`)
  const ps = query.get('ps') ?? undefined
  if (ps !== undefined && !PS.test(ps)) throw new AppError(422, `ps must be a process type like web or a ${processNoun} like web.1`)
  const source = query.get('source') ?? undefined
  if (source !== undefined && !sources.includes(source as Source)) throw new AppError(422, `source must be ${sources.slice(0, -1).join(', ')} or ${sources.at(-1)}`)
  return {lines: Number(lines), tail, filter: {ps, source: source as Source | undefined}}
}
