import type {IncomingMessage, ServerResponse} from 'node:http'

import {AppError} from '../agent/app-error.js'
import {decodePathParam, readJson, requestUrl, requestUser, sendJson, type Route} from '../agent/api-route.js'

/**
 * Answers a request with the route its path and method name, for the host agent's API and dev
 * start's control socket alike: a path no route has is a 404, a method the path does not take a
 * 405 naming those it does. Errors are thrown for the server to answer.
 */
export async function dispatchRoute(routes: readonly Route[], req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = requestUrl(req)
  const path = url.pathname
  const matching = routes.filter(([, pattern]) => pattern.test(path))
  if (matching.length === 0) throw new AppError(404, `no such resource: ${path}`)
  const route = matching.find(([method]) => method === req.method)
  if (!route) throw new AppError(405, `${req.method} is not allowed on ${path}; use ${matching.map(([method]) => method).join(' or ')}`)
  const params = route[1]
    .exec(path)!
    .slice(1)
    .map((param) => (param === undefined ? '' : decodePathParam(param)))
  const result = await route[2]({req, res, body: () => readJson(req), user: requestUser(req), params, query: url.searchParams})
  if (result !== 'answered') sendJson(res, result.status ?? 200, result.json)
}
