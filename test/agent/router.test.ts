import {readFile} from 'node:fs/promises'
import {Agent} from 'node:http'
import {connect} from 'node:net'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {agentAppSlug, eventually, startAgent, allUp, type AgentDyno} from '../support/agent.js'
import {get} from '../support/http-load.js'


let slug: {sha256: string; bytes: Buffer}
beforeAll(async () => {
  slug = await agentAppSlug()
})


/** An agent with `name` deployed from the agent-app slug, its web dyno up. */
async function deployed(agent: Awaited<ReturnType<typeof startAgent>>, name: string, config?: Record<string, string>) {
  await agent.call('POST', '/apps', {name})
  if (config) await agent.call('PATCH', `/apps/${name}/config-vars`, config)
  await agent.call('PUT', `/slugs/${slug.sha256}`, slug.bytes)
  const release = await agent.call('POST', `/apps/${name}/releases`, {slug: slug.sha256, source_version: 'c0ffee1'})
  expect(release.status, JSON.stringify(release.json)).toBe(201)
  await eventually(async () => (await agent.call('GET', `/apps/${name}/dynos`)).json as AgentDyno[], allUp)
}

const routerLines = async (agent: Awaited<ReturnType<typeof startAgent>>, app: string) =>
  (await agent.call('GET', `/apps/${app}/log?ps=router&lines=1500`)).text.split('\n').filter(Boolean)

describe("the host's router (bundled agent, real HTTP)", () => {
  it('sends every Host to the only app, logs each request, answers H80 in maintenance mode, and cuts an answer idle past the app\'s own idle timeout (H15)', async () => {
    const agent = await startAgent()
    await deployed(agent, 'shop', {GREETING: 'hi'})
    expect(await get(agent.routerPort, '/a?b=1', false, 'anything.example.com')).toEqual({status: 200, body: 'hi from web.1 of v2 at c0ffee1\n'})
    const [line] = await eventually(() => routerLines(agent, 'shop'), (lines) => lines.length === 1)
    expect(line).toMatch(/^\S+ router: at=info method=GET path="\/a\?b=1" host=anything\.example\.com request_id=\S+ fwd="127\.0\.0\.1" dyno=web\.1 connect=\d+ms service=\d+ms status=200 bytes=31 protocol=http$/)

    expect(await agent.call('PATCH', '/apps/shop', {maintenance: true})).toMatchObject({status: 200, json: {name: 'shop', maintenance: true, every_host: true}})
    const maintenance = await get(agent.routerPort, '/', false, 'shop.example.com')
    expect(maintenance.status).toBe(503)
    expect(maintenance.body).toContain('Offline for maintenance')
    const lines = await eventually(() => routerLines(agent, 'shop'), (found) => found.length === 2)
    expect(lines[1]).toMatch(/router: at=info code=H80 desc="Maintenance mode" method=GET/)
    await agent.call('PATCH', '/apps/shop', {maintenance: false})
    expect((await get(agent.routerPort, '/', false, 'shop.example.com')).status).toBe(200)
    expect((await agent.call('PATCH', '/apps/shop', {maintenance: 'yes'})).status).toBe(422)

    // The app's own idle timeout: an answer that goes quiet midway for longer is cut (H15).
    expect(await agent.call('PATCH', '/apps/shop', {idle_timeout_seconds: 1})).toMatchObject({status: 200, json: {idle_timeout_seconds: 1, request_timeout_seconds: 30}})
    expect((await agent.call('PATCH', '/apps/shop', {idle_timeout_seconds: 0.5})).status).toBe(422)
    // Two settings in one change: a line each; null goes back to the default; the same value again, no line.
    expect(await agent.call('PATCH', '/apps/shop', {request_timeout_seconds: 12.5, maintenance: true}, {'Dev-User': 'ann'})).toMatchObject({status: 200, json: {maintenance: true, request_timeout_seconds: 12.5}})
    expect(await agent.call('PATCH', '/apps/shop', {request_timeout_seconds: null, maintenance: false, idle_timeout_seconds: 1}, {'Dev-User': 'ann'})).toMatchObject({status: 200, json: {maintenance: false, request_timeout_seconds: 30, idle_timeout_seconds: 1}})
    const api = (await agent.call('GET', '/apps/shop/log?ps=api&lines=4')).text.trimEnd().split('\n').map((line) => line.replace(/^\S+ /, ''))
    expect(api).toEqual([
      'agent[api]: Maintenance mode enabled by ann',
      'agent[api]: Request timeout (H12) set to 12.5 s by ann',
      'agent[api]: Maintenance mode disabled by ann',
      'agent[api]: Request timeout (H12) reset to the default (30 s) by ann',
    ])
    expect((await agent.call('PATCH', '/apps/shop', {request_timeout_seconds: 0.0001})).status).toBe(422)
    const cut = await new Promise<string>((resolve) => {
      const socket = connect(agent.routerPort, '127.0.0.1')
      let raw = ''
      socket.on('data', (chunk: Buffer) => (raw += chunk.toString('latin1')))
      socket.on('error', () => {})
      socket.once('close', () => resolve(raw))
      socket.write('GET /stall?ms=8000 HTTP/1.1\r\nHost: shop\r\n\r\n')
    })
    expect(cut).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*first\n\r\n$/)
    const idle = await eventually(() => routerLines(agent, 'shop'), (found) => found.some((each) => each.includes('code=H15')))
    expect(idle.at(-1)).toMatch(/router: at=error code=H15 desc="Idle connection" method=GET path="\/stall\?ms=8000" .* dyno=web\.1 .* status=200 /)
  })

  it('routes by domain between apps; an unknown Host gets a 404; a domain belongs to one app', async () => {
    const agent = await startAgent()
    await deployed(agent, 'shop', {GREETING: 'shop'})
    await deployed(agent, 'blog', {GREETING: 'blog'})
    expect(await agent.call('POST', '/apps/shop/domains', {hostname: 'Shop.Example.com'})).toMatchObject({status: 201, json: {hostname: 'shop.example.com'}})
    expect((await agent.call('POST', '/apps/blog/domains', {hostname: '*.blog.example.com'})).status).toBe(201)
    expect((await agent.call('POST', '/apps/blog/domains', {hostname: 'éso.example.com'})).json).toMatchObject({hostname: 'xn--so-9ia.example.com'})
    expect(await agent.call('POST', '/apps/blog/domains', {hostname: 'shop.example.com'})).toMatchObject({status: 409})
    // A fully qualified name, final dot and all, is the same name.
    expect(await agent.call('POST', '/apps/blog/domains', {hostname: 'shop.example.com.'})).toMatchObject({status: 409})
    expect(await agent.call('POST', '/apps/blog/domains', {hostname: 'not a host'})).toMatchObject({status: 422})
    expect((await agent.call('GET', '/apps/blog')).json).toMatchObject({domains: ['*.blog.example.com', 'xn--so-9ia.example.com'], every_host: false})

    expect((await get(agent.routerPort, '/', false, 'shop.example.com:80')).body).toMatch(/^shop from web\.1/)
    expect((await get(agent.routerPort, '/', false, 'shop.example.com.')).body).toMatch(/^shop from web\.1/)
    expect((await get(agent.routerPort, '/', false, 'www.blog.example.com')).body).toMatch(/^blog from web\.1/)
    const unknown = await get(agent.routerPort, '/', false, 'other.example.com')
    expect(unknown.status).toBe(404)
    expect(unknown.body).not.toMatch(/shop|blog/)

    expect((await agent.call('DELETE', '/apps/shop/domains/shop.example.com')).status).toBe(200)
    expect((await get(agent.routerPort, '/', false, 'shop.example.com')).status).toBe(404)
    expect((await agent.call('DELETE', '/apps/shop/domains/shop.example.com')).status).toBe(404)
  })

  it('switches releases, restarts and scales down under continuous load with no failed request; a failed health gate switches nothing', async () => {
    const agent = await startAgent()
    await deployed(agent, 'shop', {GREETING: 'one'})
    let running = true
    const statuses = new Map<number, number>()
    const bodies = new Set<string>()
    const keepAlive = new Agent({keepAlive: true})
    const client = async () => {
      while (running) {
        const {status, body} = await get(agent.routerPort, '/', keepAlive, 'shop').catch(() => ({status: 0, body: ''}))
        statuses.set(status, (statuses.get(status) ?? 0) + 1)
        bodies.add(body.split(' ')[0]!)
      }
    }
    const clients = [client(), client(), client()]
    // A request in flight across the switch finishes on the old release.
    const slow = get(agent.routerPort, '/slow?ms=700', false, 'shop')
    await new Promise((resolve) => setTimeout(resolve, 100))

    expect((await agent.call('PATCH', '/apps/shop/config-vars', {GREETING: 'two'})).status).toBe(200)
    expect(await slow).toEqual({status: 200, body: 'one from web.1 of v2 at c0ffee1\n'})
    expect((await agent.call('PATCH', '/apps/shop/formation', {updates: [{type: 'web', quantity: 2}]})).status).toBe(200)
    await eventually(async () => (await agent.call('GET', '/apps/shop/dynos')).json as AgentDyno[], (dynos) => dynos.length === 2 && allUp(dynos))
    expect((await agent.call('DELETE', '/apps/shop/dynos/web')).status).toBe(200)
    expect((await agent.call('PATCH', '/apps/shop/formation', {updates: [{type: 'web', quantity: 1}]})).status).toBe(200)

    // A release whose new dynos fail the app.json health check: refused, the old ones serve on.
    const refused = await agent.call('PATCH', '/apps/shop/config-vars', {GREETING: 'three', HEALTH_STATUS: '500'})
    expect(refused.status).toBe(422)
    expect(refused.json.message).toMatch(/^web\.1 of v4 failed its health check: GET \/health failed \(attempt 2 of 2: status 500\), so nothing was switched/)
    await new Promise((resolve) => setTimeout(resolve, 200))
    running = false
    await Promise.all(clients)
    keepAlive.destroy()

    expect([...statuses.keys()]).toEqual([200])
    expect(statuses.get(200)).toBeGreaterThan(20)
    expect([...bodies].sort()).toEqual(['one', 'two'])
    expect((await get(agent.routerPort, '/', false, 'shop')).body).toMatch(/^two from web\.1 of v3/)
    // The load filled the 1,500 lines kept in memory many times over: the log file has it all.
    const failedCheck = 'agent[web.1]: Health check failed: GET /health failed (attempt 2 of 2: status 500)'
    const file = await eventually(() => readFile(join(agent.home, 'apps/shop/logs/app.log'), 'utf8'), (text) => text.includes(failedCheck))
    expect(file).toContain(failedCheck)
  })

  it('answers H14 when the app runs no web dyno', async () => {
    const agent = await startAgent()
    await deployed(agent, 'shop')
    await agent.call('PATCH', '/apps/shop/formation', {updates: [{type: 'web', quantity: 0}]})
    expect((await get(agent.routerPort, '/', false, 'shop')).status).toBe(503)
    expect((await routerLines(agent, 'shop')).at(-1)).toMatch(/router: at=error code=H14 desc="No web processes running"/)
  })
})
