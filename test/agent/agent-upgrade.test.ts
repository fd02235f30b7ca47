import {chmod, mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {allUp, eventually, type AgentDyno} from '../support/agent.js'
import {get, startLoad} from '../support/http-load.js'
import {processAlive} from '../support/processes.js'
import {projectRoot} from '../support/run-bin.js'
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
      expect(await eventually(async () => processAlive(from), (alive) => !alive, 20_000)).toBe(false)
      expect(Number(await readFile(join(shop.home, 'agent.pid'), 'utf8'))).toBe(next!.pid)
      const after = await eventually(shop.dynos, (dynos) => dynos.length === before.length && allUp(dynos))
      expect(after.map((dyno) => `${dyno.name} ${dyno.pid}`).sort(), `round ${round}`).toEqual(before.map((dyno) => `${dyno.name} ${dyno.pid}`).sort())
    }
    await pause(300)
    const counts = await load.stop()
    console.log('two agent upgrades by handover under load:', counts)
    expect(counts).toMatchObject({errors: 0, other: []})
    expect(counts.ok).toBeGreaterThan(100)
    // The new agent reads the dynos' output: a request made now shows in the log as the dyno's own line.
    expect((await get(shop.routerPort, '/after-the-upgrade')).status).toBe(200)
    const lines = await eventually(shop.log, (log) => log.some((line) => /app\[web\.\d\]: web\.\d: GET \/after-the-upgrade$/.test(line)))
    expect(lines.some((line) => /app\[web\.\d\]: web\.\d: GET \/after-the-upgrade$/.test(line))).toBe(true)
    // The agent's own lines, apart from the load's many router and app lines.
    const agentLines = (await shop.call('GET', '/apps/shop/log?lines=1500&source=agent')).text
    expect(agentLines).toMatch(/agent\[web\.1\]: Adopted running process/)
  }, 90_000)

  it('passes a stop asked for during the handover on to the new agent, which stops the dynos', async () => {
    const shop = await deployedShop({}, 'shop', ['--handover'])
    const [web] = await eventually(shop.dynos, allUp)
    const pid = ((await shop.call('GET', '/agent')).json as {pid: number}).pid
    process.kill(pid, 'SIGUSR2')
    // Once the handover is under way (the new agent is adopting the dynos for a while yet).
    while (!shop.stderr().includes('handing over to the new agent')) await pause(5)
    process.kill(pid, 'SIGTERM')
    expect(await eventually(async () => processAlive(pid), (alive) => !alive, 20_000)).toBe(false)
    // The new agent started, took the dynos, got the SIGTERM, and stopped them as any agent would.
    const next = Number(await readFile(join(shop.home, 'agent.pid'), 'utf8'))
    expect(next, shop.stderr()).not.toBe(pid)
    successors.push(next)
    expect(await eventually(async () => processAlive(web!.pid!), (alive) => !alive, 20_000)).toBe(false)
    expect(await eventually(async () => processAlive(next), (alive) => !alive, 20_000)).toBe(false)
    expect(shop.stderr()).toMatch(/handing over to the new agent \(pid \d+\)/)
  }, 60_000)

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
  }, 60_000)

  it('takes its dynos back when the new agent dies after it was told to take over: no request fails', async () => {
    const shop = await deployedShop({}, 'shop', ['--handover'])
    const before = await eventually(shop.dynos, allUp)
    // The new build as installed, run so that it dies the moment it is told to take over.
    const dieOnGo = join(shop.home, 'die-on-go.cjs')
    await writeFile(dieOnGo, "process.on('message', (message) => { if (message && message.type === 'go') process.exit(7) })\n")
    await mkdir(join(shop.home, 'bin'), {recursive: true})
    await writeFile(join(shop.home, 'bin/dev-agent'), `#!/bin/sh\nexec '${process.execPath}' --require '${dieOnGo}' '${join(projectRoot, 'dist/agent.cjs')}' "$@"\n`)
    await chmod(join(shop.home, 'bin/dev-agent'), 0o755)
    const pid = ((await shop.call('GET', '/agent')).json as {pid: number}).pid

    const load = startLoad([shop.routerPort])
    await pause(200)
    process.kill(pid, 'SIGUSR2')
    const agent = await eventually(
      async () => (await shop.call('GET', '/agent').catch(() => undefined))?.json as {pid: number; upgrade_error?: {message: string}} | undefined,
      (info) => info?.upgrade_error !== undefined,
      20_000,
    )
    await pause(300)
    const counts = await load.stop()
    console.log('a new agent dying after go, under load:', counts)
    expect(agent!.pid).toBe(pid)
    expect(agent!.upgrade_error!.message).toMatch(/^the new agent \(pid \d+\) ended before it took over$/)
    expect(shop.stderr()).toContain('this agent takes its dynos back and keeps running')
    expect(counts).toMatchObject({errors: 0, other: []})
    // The same dynos, adopted again; the API and the router work; and the agent still stops them on SIGTERM.
    const after = await eventually(shop.dynos, (dynos) => dynos.length === before.length && allUp(dynos))
    expect(after.map((dyno) => dyno.pid).sort()).toEqual(before.map((dyno) => dyno.pid).sort())
    expect(Number(await readFile(join(shop.home, 'agent.pid'), 'utf8'))).toBe(pid)
    expect((await get(shop.routerPort)).status).toBe(200)
    process.kill(pid, 'SIGTERM')
    for (const dyno of before) expect(await eventually(async () => processAlive(dyno.pid!), (alive) => !alive, 20_000)).toBe(false)
  }, 60_000)
})
