import type {Route} from './api-route.js'
import {LOG_SOURCES, type AppLog} from './app-log.js'
import {logRoute} from '../runtime/log-route.js'

/** `GET /apps/:app/log` (see logRoute) for the apps of this host. */
export function logRoutes(logFor: (app: string) => AppLog | Promise<AppLog>): Route[] {
  return [logRoute(/^\/apps\/([^/]+)\/log$/, {sources: LOG_SOURCES, processNoun: 'dyno'}, ([app]) => logFor(app!))]
}
