import {spawn} from 'node:child_process'
import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'
import {beforeAll, describe, expect, it} from 'vitest'

import {agentPaths} from '../../src/agent/agent-home.js'
import {readAgentSettings} from '../../src/agent/agent-settings.js'
import {AppDynos, readReleaseTypes} from '../../src/agent/app-dynos.js'
import {AppLog} from '../../src/agent/app-log.js'
import {PortAllocator} from '../../src/agent/port-allocator.js'
import {processStartTime} from '../../src/runtime/process-group.js'
import {extractSlug} from '../../src/slug/extract-slug.js'
import {agentAppSlug, eventually, startAgent, testAgentSettings, untilRecorded, allUp, type AgentDyno} from '../support/agent.js'
import {processAlive} from '../support/processes.js'
import {tempApp} from '../support/temp-app.js'


let slug: {sha256: string; bytes: Buffer}
beforeAll(async () => {
  slug = await agentAppSlug()
})


async function deployedShop(options: Parameters<typeof startAgent>[0] = {}) {
  const agent = await startAgent(options)
  await agent.call('POST', '/apps', {name: 'shop'})
  await agent.call('PUT', `/slugs/${slug.sha256}`, slug.bytes)
  expect((await agent.call('POST', '/apps/shop/releases', {slug: slug.sha256})).status).toBe(201)
  const dynos = async () => (await agent.call('GET', '/apps/shop/dynos')).json as AgentDyno[]
  return {...agent, dynos}
}

async function killAgent(agent: {child: import('node:child_process').ChildProcess}): Promise<void> {
  const exited = new Promise((resolve) => agent.child.once('exit', resolve))
  agent.child.kill('SIGKILL')
  await exited
}

describe('an agent restarted over the dynos of the last one (bundled agent, real processes)', () => {
  it('keeps one dyno per name when the last agent died in the middle of replacing it', async () => {
    const shop = await deployedShop()
    const [web] = await eventually(shop.dynos, allUp)
    await untilRecorded(shop.home, 'shop', 1)
    await killAgent(shop)
    // The half-done restart: a second web.1 of the same release, recorded beside the first.
    const app = agentPaths(shop.home).app('shop')
    const twin = spawn(process.execPath, ['server.js'], {cwd: app.releaseDir(1), detached: true, stdio: 'ignore', env: {...process.env, PORT: String(web!.port + 1), DYNO: 'web.1'}})
    await eventually(async () => processStartTime(twin.pid!), (time) => time !== undefined)
    await execa('mkfifo', ['-m', '600', join(app.fifos, 'web.1@0badc0de.fifo')])
    const records = JSON.parse(await readFile(app.dynos, 'utf8')) as object[]
    records.push({key: 'web.1@0badc0de', name: 'web.1', type: 'web', release: 1, command: 'node server.js', port: web!.port + 1, pid: twin.pid, start_time: processStartTime(twin.pid!)})
    await writeFile(app.dynos, JSON.stringify(records))

    const again = await startAgent({home: shop.home})
    const list = async () => (await again.call('GET', '/apps/shop/dynos')).json as AgentDyno[]
    const after = await eventually(list, (dynos) => dynos.length === 1 && allUp(dynos))
    expect(after).toEqual([expect.objectContaining({name: 'web.1', pid: web!.pid})])
    await eventually(async () => processAlive(twin.pid!), (alive) => !alive)
    expect(processAlive(twin.pid!)).toBe(false)
  })

  it('stops the dynos the last agent left when their release cannot run any more', async () => {
    const shop = await deployedShop()
    await shop.call('PATCH', '/apps/shop/formation', {updates: [{type: 'worker', quantity: 1}]})
    const before = await eventually(shop.dynos, (dynos) => dynos.length === 2 && allUp(dynos))
    await untilRecorded(shop.home, 'shop', 2)
    await killAgent(shop)
    await rm(agentPaths(shop.home).app('shop').releaseDir(1), {recursive: true})

    const again = await startAgent({home: shop.home})
    for (const dyno of before) await eventually(async () => processAlive(dyno.pid!), (alive) => !alive)
    expect(before.map((dyno) => processAlive(dyno.pid!))).toEqual([false, false])
    expect((await again.call('GET', '/apps/shop/dynos')).json).toEqual([])
    const log = (await again.call('GET', '/apps/shop/log?lines=100')).text
    expect(log).toContain('Error: could not restore v1')
  })

  it('exits with --keep-dynos while a one-off run is alive: the run stops, the formation stays', async () => {
    const shop = await deployedShop({args: ['--keep-dynos']})
    const [web] = await eventually(shop.dynos, allUp)
    const run = await shop.call('POST', '/apps/shop/dynos', {command: ['sleep', '600'], attach: false})
    expect(run.status).toBe(201)
    const runPid = ((await shop.dynos()).find((dyno) => dyno.name === 'run.1'))!.pid!
    const exited = new Promise((resolve) => shop.child.once('exit', resolve))
    shop.child.kill('SIGTERM')
    await exited
    expect(processAlive(runPid)).toBe(false)
    expect(processAlive(web!.pid!)).toBe(true)
    // The next agent takes the web dyno back (and stops it with itself at the end of the test).
    const again = await startAgent({home: shop.home})
    const [adopted] = await eventually(async () => (await again.call('GET', '/apps/shop/dynos')).json as AgentDyno[], allUp)
    expect(adopted!.pid).toBe(web!.pid)
  })

  it('gives one-off runs started together names of their own', async () => {
    const shop = await deployedShop()
    const runs = await Promise.all([1, 2, 3].map(() => shop.call('POST', '/apps/shop/dynos', {command: ['sleep', '30'], attach: false})))
    expect(runs.map((run) => run.status)).toEqual([201, 201, 201])
    expect(runs.map((run) => run.json.name).sort()).toEqual(['run.1', 'run.2', 'run.3'])
  })

  it('refuses config vars and run variables no environment can carry, and changes nothing', async () => {
    const shop = await deployedShop()
    const [web] = await eventually(shop.dynos, allUp)
    const ledger = await readFile(agentPaths(shop.home).app('shop').releases, 'utf8')
    for (const config of [{BAD: 'a\0b'}, {BIG: 'x'.repeat(40_000)}, Object.fromEntries([1, 2, 3].map((n) => [`PART${n}`, 'x'.repeat(30_000)]))]) {
      const answer = await shop.call('PATCH', '/apps/shop/config-vars', config)
      expect(answer.status, JSON.stringify(answer.json)).toBe(422)
      expect(answer.text).not.toContain('xxxxxxxx')
    }
    const run = await shop.call('POST', '/apps/shop/dynos', {command: ['env'], env: {BAD: 'a\0b'}, attach: false})
    expect(run.status).toBe(422)
    expect(run.json.message).toContain('NUL')
    expect(await readFile(agentPaths(shop.home).app('shop').releases, 'utf8')).toBe(ledger)
    expect(await shop.dynos()).toEqual([expect.objectContaining({name: 'web.1', pid: web!.pid, state: 'up'})])
  })
})

describe('a release switch whose recording fails (dyno manager in process, real processes)', () => {
  it('stops the new dynos and keeps the old ones serving', async () => {
    const home = join(await tempApp({}), 'agent-home')
    await mkdir(home, {recursive: true})
    await writeFile(join(home, 'agent.json'), JSON.stringify(testAgentSettings()))
    const settings = await readAgentSettings(home)
    const app = agentPaths(home).app('shop')
    const slugPath = join(home, 'slug.tgz')
    await writeFile(slugPath, slug.bytes)
    for (const v of [1, 2]) await extractSlug(slugPath, app.releaseDir(v))
    const log = new AppLog(app.logs)
    const dynos = new AppDynos('shop', app, settings, new PortAllocator(settings.dyno_port_range), log, () => ({domains: [], maintenance: false, request_timeout_seconds: 30, idle_timeout_seconds: 55}))
    const release = async (v: number) => ({v, dir: app.releaseDir(v), config: {}, sourceVersion: null, types: await readReleaseTypes(app.releaseDir(v), v), checks: []})
    try {
      await dynos.activate(await release(1), async () => {})
      const [old] = dynos.list()
      await expect(
        dynos.activate(await release(2), async () => {
          throw new Error('ENOSPC: no space left on device')
        }),
      ).rejects.toThrow('ENOSPC')
      expect(dynos.list()).toEqual([expect.objectContaining({name: 'web.1', release: 'v1', pid: old!.pid, state: 'up'})])
      expect(processAlive(old!.pid!)).toBe(true)
      expect(await (await fetch(`http://127.0.0.1:${old!.port}/`)).text()).toContain('of v1')
    } finally {
      await dynos.shutdown()
      await log.close()
    }
  })
})
