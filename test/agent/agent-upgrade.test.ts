import {chmod, mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {allUp, eventually, type AgentDyno} from '../support/agent.js'
import {get, startLoad} from '../support/http-load.js'
import {processAlive} from '../support/processes.js'
import {deployedShop} from './deployed-shop.js'

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Successors are started by the agent, not by the test: each is stopped here, dynos and all. */
const successors: number[] = []
afterEach(async () => {
  for (const pid of successors.splice(0)) {
    if (!processAlive(pid)) continue
    process.kill(pid, 'SIGTERM')
    await eventually(async () => processAlive(pid), (alive) => !alive, 20_000)
  }
}, 30_000)

describe('an agent upgrade by handover (SIGUSR2 to `dev-agent daemon --handover`, real processes)', () => {
  it('hands the dynos and the router socket to the new agent: no request fails, the same dynos serve', async () => {
    const shop = await deployedShop({drain_timeout_seconds: 2}, 'shop', ['--handover'])
    expect((await shop.call('PATCH', '/apps/shop/formation', {updates: [{type: 'web', quantity: 2}]})).status).toBe(200)
    const before = await eventually(shop.dynos, (dynos) => dynos.filter((dyno) => dyno.type === 'web').length === 2 && allUp(dynos))
    const old = (await shop.call('GET', '/agent')).json as {pid: number; handover: boolean; router_port: number}
    expect(old.handover).toBe(true)

    const load = startLoad([shop.routerPort, shop.routerPort])
    for (const round of [1, 2]) {
      await pause(300)
      const from = ((await shop.call('GET', '/agent')).json as {pid: number}).pid
      process.kill(from, 'SIGUSR2')
      const next = await eventually(
        async () => (await shop.call('GET', '/agent').catch(() => undefined))?.json as {pid: number; router_port: number; handover: boolean} | undefined,
        (agent) => agent !== undefined && agent.pid !== from,
        30_000,
      )
      successors.push(next!.pid)
      expect(next).toMatchObject({router_port: old.router_port, handover: true})
      // The old agent goes once its kept-alive connections have closed (at the latest the drain deadline).
      await eventually(async () => processAlive(from), (alive) => !alive, 20_000)
      expect(Number(await readFile(join(shop.home, 'agent.pid'), 'utf8'))).toBe(next!.pid)
      const after = await eventually(shop.dynos, (dynos) => dynos.length === before.length && allUp(dynos))
      expect(after.map((dyno) => `${dyno.name} ${dyno.pid}`).sort(), `round ${round}`).toEqual(before.map((dyno) => `${dyno.name} ${dyno.pid}`).sort())
    }
    await pause(300)
    const counts = await load.stop()
    console.log('two agent upgrades by handover under load:', counts)
    expect(counts).toMatchObject({errors: 0, other: []})
    expect(counts.ok).toBeGreaterThan(100)
    // The new agent reads the dynos' output: their lines still reach the log.
    const lines = await shop.log()
    expect(lines.some((line) => /agent\[web\.1\]: Adopted running process/.test(line))).toBe(true)
  }, 90_000)

  it('calls the upgrade off when the new build cannot start: the running agent keeps serving and says why', async () => {
    const shop = await deployedShop({}, 'shop', ['--handover'])
    const [web] = await eventually(shop.dynos, allUp)
    // The installed build the agent would start: one that fails at once.
    await mkdir(join(shop.home, 'bin'), {recursive: true})
    await writeFile(join(shop.home, 'bin/dev-agent'), '#!/bin/sh\necho "this build is broken" >&2\nexit 3\n')
    await chmod(join(shop.home, 'bin/dev-agent'), 0o755)
    const pid = ((await shop.call('GET', '/agent')).json as {pid: number}).pid
    process.kill(pid, 'SIGUSR2')
    const agent = await eventually(
      async () => (await shop.call('GET', '/agent')).json as {pid: number; upgrade_error?: {message: string}},
      (info) => info.upgrade_error !== undefined,
    )
    expect(agent.pid).toBe(pid)
    expect(agent.upgrade_error!.message).toMatch(/^the new agent \(.*bin\/dev-agent\) did not start: it ended \(exit status 3\) before it was ready$/)
    expect(shop.stderr()).toContain('this agent keeps running')
    expect((await get(shop.routerPort)).status).toBe(200)
    expect((await shop.dynos()).map((dyno: AgentDyno) => dyno.pid)).toEqual([web!.pid])
    // Still the one agent: a later SIGTERM stops it and its dynos as ever.
  }, 60_000)
})
