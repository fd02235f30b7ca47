import {cp, mkdir, readdir, readFile, stat} from 'node:fs/promises'
import {request} from 'node:http'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {packSource} from '../../src/slug/pack-source.js'
import {agentAppSlug, eventually, startAgent, untilRecorded, allUp, type AgentDyno} from '../support/agent.js'
import {processAlive} from '../support/processes.js'
import {projectRoot} from '../support/run-bin.js'
import {tempApp} from '../support/temp-app.js'


let slug: {sha256: string; bytes: Buffer}
beforeAll(async () => {
  slug = await agentAppSlug()
})

/** An agent with app `shop` deployed (v1 = the slug), its web dyno up. */
async function deployedShop(options: Parameters<typeof startAgent>[0] = {}, config?: Record<string, string>) {
  const agent = await startAgent(options)
  await agent.call('POST', '/apps', {name: 'shop'})
  if (config) await agent.call('PATCH', '/apps/shop/config-vars', config)
  await agent.call('PUT', `/slugs/${slug.sha256}`, slug.bytes)
  const release = await agent.call('POST', '/apps/shop/releases', {slug: slug.sha256, source_version: 'c0ffee1'})
  expect(release.status, JSON.stringify(release.json)).toBe(201)
  const dynos = async () => (await agent.call('GET', '/apps/shop/dynos')).json as AgentDyno[]
  const log = async (query = 'lines=1500') => {
    const answer = await get(agent.home, `/apps/shop/log?${query}`)
    return answer.split('\n').filter(Boolean)
  }
  return {...agent, dynos, log}
}

/** GET over the agent socket, the body as text. */
function get(home: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request({socketPath: join(home, 'agent.sock'), path}, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => (text += chunk.toString()))
      res.on('end', () => resolve(text))
    })
      .on('error', reject)
      .end()
  })
}

/** GET http://127.0.0.1:PORT/ straight from a dyno. */
function fetchDyno(port: number): Promise<string> {
  return fetch(`http://127.0.0.1:${port}/`).then((res) => res.text())
}


describe('dynos on a host (bundled agent, real processes)', () => {
  it('runs the formation of a release with its env, one web dyno at first, and logs it in one stream', async () => {
    const shop = await deployedShop({}, {GREETING: 'hi', SECRET_TOKEN: 'hunter2'})
    const dynos = await eventually(shop.dynos, allUp)
    expect(dynos).toEqual([expect.objectContaining({name: 'web.1', type: 'web', state: 'up', release: 'v2', restarts: 0})])
    expect(await fetchDyno(dynos[0]!.port)).toBe('hi from web.1 of v2 at c0ffee1\n')
    expect((await shop.call('GET', '/apps/shop/formation')).json).toEqual([
      {type: 'web', quantity: 1, command: 'node server.js'},
      {type: 'worker', quantity: 0, command: 'node worker.js'},
    ])

    const log = await shop.log()
    const stamp = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00 /
    expect(log.every((line) => stamp.test(line))).toBe(true)
    const text = log.map((line) => line.replace(stamp, ''))
    expect(text).toEqual(
      expect.arrayContaining([
        'agent[web.1]: Starting process with command `node server.js`',
        `app[web.1]: web.1: listening on ${dynos[0]!.port}`,
        'agent[web.1]: State changed from starting to up',
        'app[web.1]: web.1: GET /',
        'agent[api]: Release v2 created by ann: Deploy ' + slug.sha256.slice(0, 7),
        'agent[api]: Release v1 created by ann: Set GREETING, SECRET_TOKEN config vars',
      ]),
    )
    // Config values never reach the log stream or its files; their names do.
    const files = await readFile(join(shop.home, 'apps/shop/logs/app.log'), 'utf8')
    expect(files).toContain('SECRET_TOKEN')
    expect(files + log.join('\n') + shop.stderr()).not.toContain('hunter2')
    expect((await stat(join(shop.home, 'apps/shop/logs/app.log'))).mode & 0o777).toBe(0o600)
    expect((await get(shop.home, '/apps/shop/log?source=agent&ps=web.1&lines=2')).split('\n').filter(Boolean)).toHaveLength(2)
  })

  it('scales process types without making a release, and refuses types the release lacks', async () => {
    const shop = await deployedShop()
    const scaled = await shop.call('PATCH', '/apps/shop/formation', {updates: [{type: 'web', quantity: 2}, {type: 'worker', quantity: 1}]})
    expect(scaled.json).toEqual([
      {type: 'web', quantity: 2, command: 'node server.js'},
      {type: 'worker', quantity: 1, command: 'node worker.js'},
    ])
    const dynos = await eventually(shop.dynos, (list) => list.length === 3 && allUp(list))
    expect(dynos.map((dyno) => dyno.name)).toEqual(['web.1', 'web.2', 'worker.1'])
    expect(new Set(dynos.map((dyno) => dyno.port)).size).toBe(3)
    expect(await fetchDyno(dynos[1]!.port)).toMatch(/^hello from web.2 of v1/)

    await shop.call('PATCH', '/apps/shop/formation', {updates: [{type: 'web', quantity: 1}, {type: 'worker', quantity: 0}]})
    expect((await shop.dynos()).map((dyno) => dyno.name)).toEqual(['web.1'])
    expect(processAlive(dynos[1]!.pid!) || processAlive(dynos[2]!.pid!)).toBe(false)
    expect((await shop.call('GET', '/apps/shop/releases')).json).toHaveLength(1)
    expect(await shop.call('PATCH', '/apps/shop/formation', {updates: [{type: 'clock', quantity: 1}]})).toMatchObject({
      status: 422,
      json: {message: 'v1 has no process type clock; it has web, worker'},
    })
    expect((await shop.call('PATCH', '/apps/shop/formation', {updates: [{type: 'web', quantity: -1}]})).status).toBe(422)
  })

  it('replaces web dynos without a gap on a config change: the new one is up before the old one stops', async () => {
    const shop = await deployedShop()
    const [before] = await eventually(shop.dynos, allUp)
    await shop.call('PATCH', '/apps/shop/config-vars', {GREETING: 'bonjour'})
    const [after] = await eventually(shop.dynos, (list) => list.length === 1)
    expect(after).toMatchObject({name: 'web.1', state: 'up', release: 'v2'})
    expect(after!.pid).not.toBe(before!.pid)
    expect(await fetchDyno(after!.port)).toMatch(/^bonjour from web.1 of v2/)
    const lines = (await shop.log('source=agent&ps=web.1')).map((line) => line.slice(33))
    const newUp = lines.lastIndexOf('agent[web.1]: State changed from starting to up')
    const oldStop = lines.lastIndexOf('agent[web.1]: Stopping all processes with SIGTERM')
    expect(newUp).toBeGreaterThan(-1)
    expect(oldStop).toBeGreaterThan(newUp)
  })

  it('refuses a release whose web dyno crashes at boot: nothing switched, no release recorded, the old dynos serve', async () => {
    const shop = await deployedShop()
    await shop.call('PATCH', '/apps/shop/formation', {updates: [{type: 'worker', quantity: 1}]})
    const [before, worker] = await eventually(shop.dynos, (dynos) => dynos.length === 2 && allUp(dynos))
    const refused = await shop.call('PATCH', '/apps/shop/config-vars', {CRASH_ON_BOOT: '1'})
    expect(refused.status).toBe(422)
    expect(refused.json.message).toMatch(/^web.1 of v2 crashed, so nothing was switched; its last lines: .*web.1: crashing on boot as asked/)
    expect((await shop.call('GET', '/apps/shop/releases')).json).toHaveLength(1)
    expect((await shop.call('GET', '/apps/shop/config-vars')).json).toEqual({})
    expect(await shop.dynos()).toEqual([expect.objectContaining({name: 'web.1', pid: before!.pid, state: 'up', release: 'v1'}), expect.objectContaining({name: 'worker.1', pid: worker!.pid, release: 'v1'})])
    expect(await fetchDyno(before!.port)).toMatch(/^hello from web.1 of v1/)
    // Other types are replaced only after web succeeds: v2's worker never started.
    expect((await shop.log('source=agent&ps=worker')).filter((line) => line.includes('Starting process'))).toHaveLength(1)
    await expect(stat(join(shop.home, 'apps/shop/releases/v2'))).rejects.toThrow()
    expect((await shop.log('source=agent&ps=api')).some((line) => line.includes('agent[api]: Release v2 not made: web.1 of v2 crashed'))).toBe(true)
  })

  it('runs the release phase before a deploy or config change switches, not on a rollback; a failing one switches nothing', async () => {
    const shop = await deployedShop()
    const [before] = await eventually(shop.dynos, allUp)
    expect(await shop.log('ps=release')).toEqual([expect.stringMatching(/agent\[release\.1\]: Starting process with command `node release\.js`$/), expect.stringMatching(/app\[release\.1\]: release phase of v1 \(greeting hello\)$/), expect.stringMatching(/agent\[release\.1\]: Process exited with status 0$/)])
    const refused = await shop.call('PATCH', '/apps/shop/config-vars', {GREETING: 'hi', RELEASE_EXIT: '3'})
    expect(refused.status).toBe(422)
    expect(refused.json.message).toBe('the release phase of v2 (`node release.js`) exited with status 3, so nothing was switched; its last lines: release phase of v2 (greeting hi)')
    expect(await shop.dynos()).toEqual([expect.objectContaining({name: 'web.1', pid: before!.pid, release: 'v1'})])
    expect((await shop.call('PATCH', '/apps/shop/config-vars', {GREETING: 'hi'})).status).toBe(200)
    expect((await shop.call('POST', '/apps/shop/releases', {rollback: 1})).status).toBe(201)
    const phases = (await shop.log('ps=release&source=app')).map((line) => line.replace(/^\S+ /, ''))
    expect(phases).toEqual(['app[release.1]: release phase of v1 (greeting hello)', 'app[release.2]: release phase of v2 (greeting hi)', 'app[release.2]: release phase of v2 (greeting hi)'])
  })

  it('kills a web dyno that does not bind its PORT within the boot timeout (R10)', async () => {
    const shop = await deployedShop({settings: {boot_timeout_seconds: 0.5}})
    const refused = await shop.call('PATCH', '/apps/shop/config-vars', {NEVER_LISTEN: '1'})
    expect(refused.json.message).toMatch(/^web.1 of v2 did not accept connections on its PORT within 0.5 s \(R10\), so nothing was switched; its last lines: web.1: not listening, as asked$/)
    const log = await shop.log('source=agent')
    expect(log.some((line) => line.endsWith('agent[web.1]: Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 0.5 seconds of launch'))).toBe(true)
  })

  it('restarts a crashing dyno at once, then after a delay doubling to the cap; the dyno shows crashed meanwhile', async () => {
    const shop = await deployedShop({settings: {restart_backoff: {initial_seconds: 0.3, max_seconds: 1.2, reset_after_seconds: 60}}}, {WORKER_CRASH: '1'})
    await shop.call('PATCH', '/apps/shop/formation', {updates: [{type: 'worker', quantity: 1}]})
    const crashed = await eventually(shop.dynos, (list) => list.some((dyno) => dyno.name === 'worker.1' && dyno.state === 'crashed'))
    expect(crashed.find((dyno) => dyno.name === 'worker.1')?.state).toBe('crashed')
    const log = await eventually(
      () => shop.log('source=agent&ps=worker.1'),
      (lines) => lines.filter((line) => line.includes('Restarting in')).length >= 4,
    )
    const announced = log.filter((line) => line.includes('Restarting in')).map((line) => line.replace(/.*Restarting in ([\d.]+) s.*/, '$1'))
    expect(announced.slice(0, 4)).toEqual(['0.3', '0.6', '1.2', '1.2'])
    // Each start after a "Restarting in D s" came at least D after the exit before it.
    const time = (line: string) => Date.parse(line.slice(0, 26) + 'Z') // µs dropped; ms is enough here
    const exits = log.filter((line) => line.includes('Process exited with status 4')).map(time)
    const starts = log.filter((line) => line.includes('Starting process')).map(time)
    expect(exits.length).toBeGreaterThanOrEqual(4)
    expect(starts[1]! - exits[0]!).toBeGreaterThanOrEqual(0)
    expect(starts[2]! - exits[1]!).toBeGreaterThanOrEqual(300 - 1)
    expect(starts[3]! - exits[2]!).toBeGreaterThanOrEqual(600 - 1)
  })

  it('restarts all dynos, a type, or one dyno; an unknown target is a 404', async () => {
    const shop = await deployedShop()
    await shop.call('PATCH', '/apps/shop/formation', {updates: [{type: 'worker', quantity: 1}]})
    const before = await eventually(shop.dynos, (list) => list.length === 2 && allUp(list))
    expect((await shop.call('DELETE', '/apps/shop/dynos/web')).json).toEqual({restarted: ['web.1']})
    const afterWeb = await eventually(shop.dynos, (list) => list.length === 2 && allUp(list))
    expect(afterWeb.find((dyno) => dyno.name === 'web.1')!.pid).not.toBe(before[0]!.pid)
    expect(afterWeb.find((dyno) => dyno.name === 'worker.1')!.pid).toBe(before[1]!.pid)
    expect((await shop.call('DELETE', '/apps/shop/dynos/worker.1')).json).toEqual({restarted: ['worker.1']})
    const afterWorker = await eventually(shop.dynos, (list) => list.length === 2 && allUp(list) && list[1]!.pid !== before[1]!.pid)
    expect(afterWorker[1]!.pid).not.toBe(before[1]!.pid)
    expect((await shop.call('DELETE', '/apps/shop/dynos')).json).toEqual({restarted: ['web.1', 'worker.1']})
    expect(await shop.call('DELETE', '/apps/shop/dynos/clock')).toMatchObject({status: 404, json: {message: 'app shop has no dyno or process type named clock'}})
  })

  it('kills the whole group after the stop grace when a dyno ignores SIGTERM (R12)', async () => {
    const shop = await deployedShop({settings: {stop_grace_seconds: 0.5}}, {IGNORE_TERM: '1'})
    const [before] = await eventually(shop.dynos, allUp)
    await shop.call('DELETE', '/apps/shop/dynos/web.1')
    const log = await eventually(
      () => shop.log('source=agent&ps=web.1'),
      (lines) => lines.some((line) => line.includes('R12')),
    )
    expect(log.some((line) => line.endsWith('Error R12 (Exit timeout) -> At least one process failed to exit within 0.5 seconds of SIGTERM'))).toBe(true)
    expect(log.some((line) => line.endsWith('Stopping remaining processes with SIGKILL'))).toBe(true)
    expect(processAlive(before!.pid!)).toBe(false)
  })

  it('adopts the dynos that outlive a kill -9 of the agent, restarts the dead ones, and loses nothing from the ledger', async () => {
    const shop = await deployedShop()
    await shop.call('PATCH', '/apps/shop/formation', {updates: [{type: 'web', quantity: 2}, {type: 'worker', quantity: 1}]})
    const before = await eventually(shop.dynos, (list) => list.length === 3 && allUp(list))
    await untilRecorded(shop.home, 'shop', 3)
    const ledger = await readFile(join(shop.home, 'apps/shop/releases.jsonl'), 'utf8')
    shop.child.kill('SIGKILL')
    await new Promise((resolve) => shop.child.once('exit', resolve))
    // While the agent is away, one dyno dies; a build killed with the agent left its directory.
    process.kill(-before[2]!.pid!, 'SIGKILL')
    await mkdir(join(shop.home, 'builds', 'shop-stale'), {recursive: true})
    expect(processAlive(before[0]!.pid!)).toBe(true)

    const again = await startAgent({home: shop.home})
    const after = await eventually(
      async () => (await again.call('GET', '/apps/shop/dynos')).json as AgentDyno[],
      (list) => list.length === 3 && allUp(list),
    )
    expect(after.slice(0, 2).map((dyno) => dyno.pid)).toEqual([before[0]!.pid, before[1]!.pid])
    expect(after[2]!.pid).not.toBe(before[2]!.pid)
    expect(await readFile(join(shop.home, 'apps/shop/releases.jsonl'), 'utf8')).toBe(ledger)
    await expect(stat(join(shop.home, 'builds'))).rejects.toThrow()
    // The adopted dyno's output still reaches the log stream.
    await fetchDyno(after[0]!.port)
    const log = await eventually(
      async () => (await get(shop.home, '/apps/shop/log?ps=web.1&source=app')).split('\n'),
      (lines) => lines.filter((line) => line.endsWith('web.1: GET /')).length === 1,
    )
    expect(log.filter((line) => line.endsWith('web.1: GET /'))).toHaveLength(1)
  })

  it('builds uploaded source on the host with the built-in buildpacks the agent carries, then runs the slug', async () => {
    const root = await tempApp({})
    await cp(join(projectRoot, 'fixtures/agent-app'), root, {recursive: true})
    const source = await packSource({root, secrets: []})
    const agent = await startAgent()
    await agent.call('POST', '/apps', {name: 'shop'})
    expect((await agent.call('PUT', `/sources/${source.sha256}`, await readFile(source.path))).status).toBe(201)
    const stream = await agent.call('POST', '/apps/shop/builds', {source: source.sha256, source_version: {commit: 'abc1234', dirty: false}})
    expect(stream.status).toBe(200)
    const events = stream.text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as {line?: string; slug?: {sha256: string; buildpacks: string[]}; error?: string})
    const built = events.at(-1)!.slug
    expect(built, JSON.stringify(events)).toMatchObject({buildpacks: ['none']})
    expect(await agent.call('POST', '/apps/shop/releases', {slug: built!.sha256, source_version: 'abc1234'})).toMatchObject({status: 201})
    const [web] = await eventually(async () => (await agent.call('GET', '/apps/shop/dynos')).json as AgentDyno[], allUp)
    expect(await fetchDyno(web!.port)).toBe('hello from web.1 of v1 at abc1234\n')
    await source.dispose()
  })

  it('stops its dynos on SIGTERM, and leaves them for the next agent with --keep-dynos', async () => {
    const shop = await deployedShop({args: ['--keep-dynos']})
    const [kept] = await eventually(shop.dynos, allUp)
    shop.child.kill('SIGTERM')
    await new Promise((resolve) => shop.child.once('exit', resolve))
    expect(processAlive(kept!.pid!)).toBe(true)

    const again = await startAgent({home: shop.home})
    const [adopted] = await eventually(
      async () => (await again.call('GET', '/apps/shop/dynos')).json as AgentDyno[],
      allUp,
    )
    expect(adopted!.pid).toBe(kept!.pid)
    again.child.kill('SIGTERM')
    await new Promise((resolve) => again.child.once('exit', resolve))
    expect(processAlive(kept!.pid!)).toBe(false)
    expect(await readdir(join(shop.home, 'apps/shop/fifos'))).toEqual([])
  })
})
