import {request} from 'node:http'
import {join} from 'node:path'

import {expect} from 'vitest'

import {agentAppSlug, allUp, eventually, startAgent, type AgentDyno} from '../support/agent.js'

/** An agent with app `name` (default `shop`) deployed from the agent-app slug, its web dyno up. */
export async function deployedShop(settings: Record<string, unknown> = {}, name = 'shop', args: string[] = []) {
  const agent = await startAgent({settings, args})
  await deploy(agent, name)
  const dynos = async (app = name) => (await agent.call('GET', `/apps/${app}/dynos`)).json as AgentDyno[]
  const log = async (app = name) => (await agent.call('GET', `/apps/${app}/log?lines=1500`)).text.split('\n').filter(Boolean)
  return {...agent, dynos, log, deploy: (app: string) => deploy(agent, app)}
}

/** Creates `app` and deploys the agent-app slug to it; resolves once its web dyno is up. */
async function deploy(agent: Awaited<ReturnType<typeof startAgent>>, app: string): Promise<void> {
  const slug = await agentAppSlug()
  await agent.call('POST', '/apps', {name: app})
  await agent.call('PUT', `/slugs/${slug.sha256}`, slug.bytes)
  const release = await agent.call('POST', `/apps/${app}/releases`, {slug: slug.sha256})
  expect(release.status, JSON.stringify(release.json)).toBe(201)
  await eventually(async () => (await agent.call('GET', `/apps/${app}/dynos`)).json as AgentDyno[], allUp)
}

/** Takes the app's deploy lock as bob on a connection of its own, kept open until `release`. */
export async function holdLock(home: string, app: string): Promise<{token: string; since: string; release: () => void}> {
  const req = request({socketPath: join(home, 'agent.sock'), method: 'POST', path: `/apps/${app}/lock`, headers: {'dev-user': 'bob'}})
  req.end()
  const holder = await new Promise<{token: string; since: string}>((resolve) => {
    req.once('response', (res) => res.once('data', (chunk: Buffer) => resolve(JSON.parse(chunk.toString()))))
  })
  return {...holder, release: () => req.destroy()}
}
