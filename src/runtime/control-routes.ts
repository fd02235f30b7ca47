import {z} from 'zod'

import {AppError} from '../agent/app-error.js'
import {parseBody, type Route} from '../agent/api-route.js'
import {DEFAULT_MEMORY_LINES} from '../agent/app-log.js'
import {MAX_QUANTITY} from './formation.js'
import type {LocalDynos} from './local-dynos.js'
import {LOCAL_LOG_SOURCES, type LocalLog, type LocalLogFilter, type LocalLogSource} from './local-log.js'
import {PROCESS_NAME} from './procfile.js'

/** The lines a log request gets without `lines`, and the most it may ask for (all the log keeps). */
const DEFAULT_LINES = 100
const MAX_LINES = DEFAULT_MEMORY_LINES
/** A process type or one process of it: `web`, `web.1`. */
const PS = /^[A-Za-z0-9_-]+(\.\d+)?$/
/** `?tail` alone asks for a tail too. */
const TAIL_VALUES = new Map([
  ['', true],
  ['1', true],
  ['true', true],
  ['0', false],
  ['false', false],
])

const PatchFormation = z
  .object({updates: z.array(z.object({type: z.string().regex(PROCESS_NAME, 'a process type name'), quantity: z.number().int().min(0).max(MAX_QUANTITY)}).strict()).min(1)})
  .strict()

/** What the control socket serves: one dev start's processes and log. */
export interface ControlParts {
  root: string
  startedAt: Date
  dynos: LocalDynos
  log: LocalLog
}

/**
 * The subset of the host agent's API (docs/agent-api.md) that a local `dev start` answers, so the
 * operating commands need one client. The app's name in a path is whatever the client calls the
 * project: there is one app here.
 */
export function controlRoutes({root, startedAt, dynos, log}: ControlParts): Route[] {
  return [
    ['GET', /^\/agent$/, async () => ({json: {local: true, pid: process.pid, root, started_at: startedAt.toISOString()}})],
    ['GET', /^\/apps\/[^/]+\/formation$/, async () => ({json: await dynos.formation()})],
    [
      'PATCH',
      /^\/apps\/[^/]+\/formation$/,
      async ({body}) => {
        const {updates} = parseBody(PatchFormation, await body())
        return {json: await dynos.scale(updates)}
      },
    ],
    ['GET', /^\/apps\/[^/]+\/dynos$/, async () => ({json: await dynos.list()})],
    ['DELETE', /^\/apps\/[^/]+\/dynos(?:\/([^/]+))?$/, async ({params}) => ({json: {restarted: await dynos.restart(params[0] || undefined)}})],
    ['POST', /^\/apps\/[^/]+\/dynos\/([^/]+)\/actions\/stop$/, async ({params}) => ({json: {stopped: await dynos.stop(params[0]!)}})],
    [
      'GET',
      /^\/apps\/[^/]+\/log$/,
      async ({query, res}) => {
        const {lines, tail, filter} = parseLogQuery(query)
        const recent = log.recent({lines, ...filter}).map((line) => `${line}\n`)
        res.writeHead(200, {'content-type': 'text/plain; charset=utf-8'})
        if (!tail) {
          res.end(recent.join(''))
          return 'answered'
        }
        // The client sees the answer start even when there is nothing to show yet.
        res.flushHeaders()
        if (recent.length > 0) res.write(recent.join(''))
        // No line comes between the recent ones and the subscription; it ends when the client goes.
        log.subscribe(filter, res)
        return 'answered'
      },
    ],
  ]
}

function parseLogQuery(query: URLSearchParams): {lines: number; tail: boolean; filter: LocalLogFilter} {
  const tail = TAIL_VALUES.get(query.get('tail') ?? 'false')
  if (tail === undefined) throw new AppError(422, 'tail must be 1 or true (or 0 or false)')
  // A tail may ask for no past lines at all: only what comes from now on.
  const lines = query.get('lines') ?? String(DEFAULT_LINES)
  const least = tail ? 0 : 1
  if (!/^\d+$/.test(lines) || Number(lines) < least || Number(lines) > MAX_LINES) throw new AppError(422, `lines must be a whole number from ${least} to ${MAX_LINES}`)
  const ps = query.get('ps') ?? undefined
  if (ps !== undefined && !PS.test(ps)) throw new AppError(422, 'ps must be a process type like web or a process like web.1')
  const source = query.get('source') ?? undefined
  if (source !== undefined && !LOCAL_LOG_SOURCES.includes(source as LocalLogSource)) throw new AppError(422, 'source must be app, dev or router')
  return {lines: Number(lines), tail, filter: {ps, source: source as LocalLogSource | undefined}}
}
