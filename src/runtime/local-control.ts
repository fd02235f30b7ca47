import {rm} from 'node:fs/promises'
import {request as httpRequest, type ClientRequest, type IncomingMessage} from 'node:http'
import {connect} from 'node:net'
import {join} from 'node:path'
import type {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {callThrough, type AgentAnswer, type AgentClient} from './agent-client.js'
import {DevError} from './dev-error.js'

/** The longest Unix socket path in bytes, leaving room for the NUL some systems want. */
export const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103

/** Where a running `dev start` takes the operating commands' requests. */
export function controlSocketPath(root: string): string {
  return join(root, '.dev', 'dev.sock')
}

/** False for a path too long to be a Unix socket (the kernel would cut it short). */
export function socketPathFits(path: string): boolean {
  return Buffer.byteLength(path) <= MAX_SOCKET_PATH_BYTES
}

/**
 * The `dev start` running in `root`, as an AgentClient speaking the agent API over its control
 * socket; undefined when none runs there. A socket nothing listens on (left by a run that crashed)
 * is removed.
 */
export async function connectLocalControl(root: string): Promise<AgentClient | undefined> {
  const path = controlSocketPath(root)
  if (!socketPathFits(path)) return undefined
  const refused = await tryConnect(path)
  if (refused === undefined) return new LocalControl(path, root)
  if (refused === 'ENOENT' || refused === 'ENOTDIR') return undefined
  if (refused === 'ECONNREFUSED' || refused === 'ENOTSOCK') {
    await rm(path, {force: true})
    return undefined
  }
  throw new DevError(`cannot reach the dev start in ${root} through ${path} (${refused})`)
}

/** Undefined when something accepts on the socket, else the error code of the attempt. */
function tryConnect(path: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect(path)
    socket.once('connect', () => {
      socket.destroy()
      resolve(undefined)
    })
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message))
  })
}

/** The control socket of one running `dev start`: one connection per request. */
class LocalControl implements AgentClient {
  readonly name = 'local'
  /** Requests under way (a live log stream, say), cut by close(). */
  private readonly open = new Set<ClientRequest>()

  constructor(
    private readonly path: string,
    private readonly root: string,
  ) {}

  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<AgentAnswer> {
    return callThrough(this, method, path, body, headers)
  }

  request(method: string, path: string, {body, headers = {}}: {body?: Buffer | Readable; headers?: Record<string, string>} = {}): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const length = Buffer.isBuffer(body) ? {'content-length': String(body.length)} : {}
      const req = httpRequest({socketPath: this.path, method, path, headers: {'content-type': 'application/json', ...headers, ...length}, agent: false}, resolve)
      this.open.add(req)
      req.once('close', () => this.open.delete(req))
      req.once('error', (error: NodeJS.ErrnoException) => reject(this.unreachable(error)))
      if (body === undefined || Buffer.isBuffer(body)) req.end(body)
      else pipeline(body, req).catch((error: Error) => req.destroy(new Error(`the data to send broke off: ${error.message}`)))
    })
  }

  close(): void {
    for (const req of this.open) req.destroy()
  }

  private unreachable(error: NodeJS.ErrnoException): DevError {
    if (error.code === 'ECONNREFUSED' || error.code === 'ENOENT') return new DevError(`the dev start in ${this.root} has stopped`)
    return new DevError(`the dev start in ${this.root} did not answer: ${error.message}`)
  }
}
