import {parseBody, type Route} from '../agent/api-route.js'
import {PatchFormation} from './dyno-api.js'
import type {LocalDynos} from './local-dynos.js'
import {LOCAL_LOG_SOURCES, type LocalLog} from './local-log.js'
import {logRoute} from './log-route.js'

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
    logRoute(/^\/apps\/[^/]+\/log$/, {sources: LOCAL_LOG_SOURCES, processNoun: 'process'}, () => log),
  ]
}
