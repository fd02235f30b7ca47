import {z} from 'zod'

import {parseBody, type Route} from './api-route.js'
import type {LogSink} from './log-sink.js'
import {RoutingChange, type RoutingStore} from './routing-store.js'

const AddDomain = z.object({hostname: z.string().min(1).max(300)}).strict()

/**
 * The router's side of an app: `GET`/`PATCH /apps/:app` (maintenance mode, request and idle timeouts) and
 * `GET`/`POST /apps/:app/domains`, `DELETE /apps/:app/domains/:hostname`.
 */
export function routingRoutes({
  routing,
  existing,
  logFor,
  getsEveryHost,
}: {
  routing: RoutingStore
  existing: (app: string) => Promise<string>
  logFor: (app: string) => LogSink
  /** Whether a request whose Host names no domain goes to the app (the only one serving). */
  getsEveryHost: (app: string) => boolean
}): Route[] {
  const info = (app: string) => {
    const {domains, maintenance, request_timeout_seconds, idle_timeout_seconds} = routing.get(app)
    return {name: app, maintenance, request_timeout_seconds, idle_timeout_seconds, domains: domains.map((domain) => domain.hostname), every_host: getsEveryHost(app)}
  }
  return [
    ['GET', /^\/apps\/([^/]+)$/, async ({params}) => ({json: info(await existing(params[0]!))})],
    [
      'PATCH',
      /^\/apps\/([^/]+)$/,
      async ({params, body, user}) => {
        const app = await existing(params[0]!)
        const change = parseBody(RoutingChange, await body())
        const {before, after} = await routing.update(app, change)
        const log = (line: string) => logFor(app).append('agent', 'api', `${line} by ${user}`)
        const timeout = (seconds: number, reset: boolean) => (reset ? `reset to the default (${seconds} s)` : `set to ${seconds} s`)
        if (after.maintenance !== before.maintenance) log(`Maintenance mode ${after.maintenance ? 'enabled' : 'disabled'}`)
        if (after.request_timeout_seconds !== before.request_timeout_seconds) log(`Request timeout (H12) ${timeout(after.request_timeout_seconds, change.request_timeout_seconds === null)}`)
        if (after.idle_timeout_seconds !== before.idle_timeout_seconds) log(`Idle timeout (H15) ${timeout(after.idle_timeout_seconds, change.idle_timeout_seconds === null)}`)
        return {json: info(app)}
      },
    ],
    ['GET', /^\/apps\/([^/]+)\/domains$/, async ({params}) => ({json: routing.get(await existing(params[0]!)).domains})],
    [
      'POST',
      /^\/apps\/([^/]+)\/domains$/,
      async ({params, body, user}) => {
        const app = await existing(params[0]!)
        const domain = await routing.addDomain(app, parseBody(AddDomain, await body()).hostname)
        logFor(app).append('agent', 'api', `Domain ${domain.hostname} added by ${user}`)
        return {status: 201, json: domain}
      },
    ],
    [
      'DELETE',
      /^\/apps\/([^/]+)\/domains\/([^/]+)$/,
      async ({params, user}) => {
        const app = await existing(params[0]!)
        const domain = await routing.removeDomain(app, params[1]!)
        logFor(app).append('agent', 'api', `Domain ${domain.hostname} removed by ${user}`)
        return {json: domain}
      },
    ],
  ]
}
