import {createServer} from 'node:net'

import {DevError} from './dev-error.js'

export const DEFAULT_BASE_PORT = 5000
/** Each type gets a block of this many ports, starting at base + STEP × its Procfile index. */
export const PORT_STEP = 100
export const MAX_PORT = 65_535

/** The base port: --port, else PORT from the env files, else the shell's PORT, else 5000. */
export function resolveBasePort(sources: {flag?: number; envFiles?: string; shell?: string}): number {
  if (sources.flag !== undefined) return checkPort(sources.flag, '--port')
  if (sources.envFiles !== undefined && sources.envFiles !== '') return checkPort(Number(sources.envFiles), 'PORT in the env files')
  if (sources.shell !== undefined && sources.shell !== '') return checkPort(Number(sources.shell), 'PORT in the environment')
  return DEFAULT_BASE_PORT
}

/** The port of instance `instance` (from 1) of the type at `typeIndex` in the Procfile. */
export function portFor(base: number, typeIndex: number, instance: number): number {
  return base + PORT_STEP * typeIndex + (instance - 1)
}

function checkPort(port: number, source: string): number {
  if (!Number.isInteger(port) || port < 1 || port > MAX_PORT) throw new DevError(`${source} is not a port number (1-65535); fix it or pass --port`)
  return port
}

/** True when something already listens on `port` (any interface), so a process there would fail to bind. */
export async function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'EADDRINUSE'))
    server.listen({port, exclusive: true}, () => server.close(() => resolve(false)))
  })
}
