import {chmod, mkdir, rm, rmdir, stat} from 'node:fs/promises'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import {dirname} from 'node:path'

import type {Route} from '../agent/api-route.js'
import {DevError} from './dev-error.js'
import {connectLocalControl, controlSocketPath, MAX_SOCKET_PATH_BYTES, socketPathFits} from './local-control.js'

/** What the commands that reach dev start through the socket are: said when they cannot. */
const COMMANDS = 'dev ps, scale, restart, stop and logs'

export interface ControlServer {
  readonly path: string
  /** Stops serving (cutting live log streams) and removes the socket. */
  close(): Promise<void>
}

/**
 * Serves `routes` on `<root>/.dev/dev.sock` (mode 0600), the way the host agent serves its API. A
 * socket left by a run that crashed is replaced; one that answers means a dev start runs in `root`
 * already: a DevError, before anything starts. When the socket cannot be had at all (a path too
 * long for a Unix socket, a read-only root), `warn` is told why and dev start runs on without it.
 */
export async function openControlServer(root: string, loadRoutes: () => Promise<readonly Route[]>, warn: (text: string) => void): Promise<ControlServer | undefined> {
  const path = controlSocketPath(root)
  if (!socketPathFits(path)) {
    warn(`warning: ${path} is too long for a Unix socket (${Buffer.byteLength(path)} bytes, at most ${MAX_SOCKET_PATH_BYTES}); ${COMMANDS} cannot reach this dev start`)
    return undefined
  }
  const running = await connectLocalControl(root)
  if (running !== undefined) {
    const pid = (await running.call('GET', '/agent').catch(() => undefined))?.json?.pid
    running.close()
    throw alreadyRunning(root, pid)
  }
  // The routes (and the validation library they use, several MiB) load with the first request:
  // a dev start nobody asks anything costs no more memory than before the socket existed.
  let handler: Promise<(req: IncomingMessage, res: ServerResponse) => void> | undefined
  const server = createServer((req, res) => {
    handler ??= Promise.all([import('./control-handler.js'), loadRoutes()]).then(([{controlHandler}, routes]) => controlHandler(routes, warn))
    void handler.then((handle) => handle(req, res))
  })
  let madeDir: string | undefined
  try {
    madeDir = await mkdir(dirname(path), {recursive: true})
    await listen(server, path)
  } catch (error) {
    const {code, message} = error as NodeJS.ErrnoException
    // Another dev start took the socket between the check and now.
    if (code === 'EADDRINUSE') throw alreadyRunning(root, undefined)
    if (madeDir !== undefined) await rmdir(madeDir).catch(() => {})
    warn(`warning: cannot listen on ${path} (${code ?? message}); ${COMMANDS} cannot reach this dev start`)
    return undefined
  }
  let ino: number | undefined
  const close = async () => {
    server.close()
    server.closeAllConnections()
    // Only our own socket: a dev start started since (after .dev was removed, say) keeps its.
    if ((await stat(path).catch(() => undefined))?.ino === ino) await rm(path, {force: true})
    if (madeDir !== undefined) await rmdir(madeDir).catch(() => {})
  }
  try {
    ino = (await stat(path)).ino
    await chmod(path, 0o600)
  } catch (error) {
    await close()
    throw error
  }
  return {path, close}
}

function alreadyRunning(root: string, pid: unknown): DevError {
  return new DevError(`dev start is already running in ${root} (pid ${typeof pid === 'number' ? pid : 'unknown'}); stop it first`)
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => {
      server.off('error', reject)
      resolve()
    })
  })
}
