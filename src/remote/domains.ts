import {DevError} from '../runtime/dev-error.js'
import type {RemoteAgent} from './remote-agent.js'

export interface Domain {
  hostname: string
  created_at: string
}

/** The app's domains on one host (an app not on the host yet has none). */
export async function listDomains(agent: RemoteAgent, app: string): Promise<Domain[]> {
  const answer = await agent.call('GET', `/apps/${app}/domains`)
  if (answer.status === 404) return []
  if (answer.status !== 200) throw new DevError(`${agent.name}: ${answer.json?.message ?? answer.text}`)
  return answer.json as Domain[]
}

/** Adds a domain to the app on one host; the app must be on it (deploy it first). */
export async function addDomain(agent: RemoteAgent, app: string, hostname: string): Promise<Domain> {
  const answer = await agent.call('POST', `/apps/${app}/domains`, {hostname})
  if (answer.status === 404) throw new DevError(`${agent.name}: there is no app ${app} on this host yet; deploy it first`)
  if (answer.status !== 201) throw new DevError(`${agent.name}: ${answer.json?.message ?? answer.text}`)
  return answer.json as Domain
}

export async function removeDomain(agent: RemoteAgent, app: string, hostname: string): Promise<Domain> {
  const answer = await agent.call('DELETE', `/apps/${app}/domains/${encodeURIComponent(hostname)}`)
  if (answer.status !== 200) throw new DevError(`${agent.name}: ${answer.json?.message ?? answer.text}`)
  return answer.json as Domain
}
