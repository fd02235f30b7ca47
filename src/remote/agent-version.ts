import {readFileSync} from 'node:fs'

import {DevError} from '../runtime/dev-error.js'
import type {RemoteAgent} from './remote-agent.js'

/** This dev's version, which the agent it installs carries too. */
export function devVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {version: string}
  return pkg.version
}

/**
 * Refuses to work with an agent older than this dev (it may lack what this dev asks of it): the
 * fix is `dev hosts setup`, which upgrades it with the dynos kept running.
 */
export async function requireCurrentAgent(agent: RemoteAgent): Promise<void> {
  const answer = await agent.call('GET', '/agent')
  const version = answer.status === 200 ? String(answer.json?.version ?? '') : undefined
  const wanted = devVersion()
  if (version === undefined || olderThan(version, wanted)) {
    throw new DevError(`the agent on ${agent.name} is ${version === undefined ? 'older than this dev' : `dev-agent ${version}, older than this dev (${wanted})`}: run \`dev hosts setup ${agent.name}\` to upgrade it (its dynos keep running)`)
  }
}

function olderThan(version: string, than: string): boolean {
  const parts = (text: string) => text.split(/[.-]/).slice(0, 3).map((part) => Number.parseInt(part, 10) || 0)
  const [a, b] = [parts(version), parts(than)]
  for (let index = 0; index < 3; index++) if (a[index] !== b[index]) return a[index]! < b[index]!
  return false
}
