import type {IncomingMessage, ServerResponse} from 'node:http'

import {AppError} from '../agent/app-error.js'
import {errorId, sendJson, type Route} from '../agent/api-route.js'
import {isDevError} from './dev-error.js'
import {dispatchRoute} from './route-dispatch.js'

/** Answers one request on dev start's control socket, errors in the agent API's shape. */
export function controlHandler(routes: readonly Route[], warn: (text: string) => void) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    void dispatchRoute(routes, req, res).catch((error: unknown) => {
      const refused = error instanceof AppError ? error : isDevError(error) ? new AppError(422, error.message) : undefined
      if (refused === undefined) warn(`error: ${req.method} ${req.url} on the control socket failed: ${(error as Error).message}`)
      // Once an answer has started, no error answer can follow it: the connection is cut instead.
      if (res.headersSent) res.destroy()
      else sendJson(res, refused?.status ?? 500, {id: errorId(refused?.status ?? 500), message: refused?.message ?? 'internal error; see the dev start output'})
    })
  }
}
