import {existsSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

import {DevError} from '../runtime/dev-error.js'

/**
 * The agent this dev installs on hosts: dist/agent.cjs beside the build (dist/remote/ → dist/),
 * or of the project when dev runs from its sources.
 */
export function agentFile(): string {
  for (const relative of ['../agent.cjs', '../../dist/agent.cjs']) {
    const path = fileURLToPath(new URL(relative, import.meta.url))
    if (existsSync(path)) return path
  }
  throw new DevError('the agent build (dist/agent.cjs) is missing: run `npm run build`')
}
