import {describe, expect, it} from 'vitest'

import {allUp, attachedRun, eventually} from '../support/agent.js'
import {get, startLoad} from '../support/http-load.js'
import {processAlive} from '../support/processes.js'
import {deployedShop, holdLock} from './deployed-shop.js'

const stop = (shop: Awaited<ReturnType<typeof deployedShop>>, dyno: string, headers?: Record<string, string>) => shop.call('POST', `/apps/shop/dynos/${dyno}/actions/stop`, undefined, headers)

describe('stopping one dyno (bundled agent, real processes)', () => {
  it('stops a web dyno without failing a request: its replacement comes up first, and it finishes what it was answering', async () => {
    const shop = await deployedShop({drain_timeout_seconds: 20})
    const [before] = await shop.dynos()
    const load = startLoad([shop.routerPort, shop.routerPort])
    const slow = get(shop.routerPort, '/slow?ms=1500')
    await eventually(shop.log, (lines) => lines.some((line) => line.endsWith('app[web.1]: web.1: GET /slow?ms=1500')))

    expect(await stop(shop, 'web.1')).toEqual({status: 200, json: {stopped: 'web.1'}})
    expect(await slow).toEqual({status: 200, body: 'hello from web.1 of v1 at unknown\n'})
    const counts = await load.stop()
    expect(counts).toMatchObject({other: [], errors: 0})
    expect(counts.ok).toBeGreaterThan(0)

    const [after] = await shop.dynos()
    expect(after).toMatchObject({name: 'web.1', state: 'up'})
    expect(after!.pid).not.toBe(before!.pid)
    expect(processAlive(before!.pid!)).toBe(false)
    // The agent's lines only: the load's router lines can push them out of the last 1,500.
    const agentLines = (await shop.call('GET', '/apps/shop/log?lines=1500&source=agent')).text.split('\n').filter(Boolean)
    const lines = agentLines.map((line) => line.replace(/^\S+ /, ''))
    expect(lines).toContain('agent[api]: Stopped web.1 by ann')
    // The replacement was up before the old one got its SIGTERM.
    expect(lines.lastIndexOf('agent[web.1]: Stopping all processes with SIGTERM')).toBeGreaterThan(lines.lastIndexOf('agent[web.1]: State changed from starting to up'))
  })

  it('starts a stopped worker again; stops a one-off run for good, with SIGKILL after the grace', async () => {
    const shop = await deployedShop({stop_grace_seconds: 0.5})
    await shop.call('PATCH', '/apps/shop/formation', {updates: [{type: 'worker', quantity: 1}]})
    const [, worker] = await eventually(shop.dynos, (list) => list.length === 2 && allUp(list))
    expect(await stop(shop, 'worker.1')).toEqual({status: 200, json: {stopped: 'worker.1'}})
    const [, again] = await eventually(shop.dynos, (list) => list.length === 2 && allUp(list))
    expect(again).toMatchObject({name: 'worker.1', state: 'up'})
    expect(again!.pid).not.toBe(worker!.pid)

    await shop.call('POST', '/apps/shop/dynos', {command: ['sh', '-c', 'trap "" TERM; echo "pid $$"; while :; do sleep 0.1; done'], attach: false})
    const started = await eventually(shop.log, (lines) => lines.some((line) => line.includes('app[run.1]: pid ')))
    const pid = Number(started.find((line) => line.includes('app[run.1]: pid '))!.split(' ').at(-1))
    expect(await stop(shop, 'run.1')).toEqual({status: 200, json: {stopped: 'run.1'}})
    const log = await eventually(shop.log, (lines) => lines.some((line) => line.endsWith('agent[run.1]: State changed from up to complete')))
    expect(log.map((line) => line.replace(/^\S+ /, '')).filter((line) => line.startsWith('agent[run.1]: S') || line.startsWith('agent[run.1]: P'))).toEqual([
      expect.stringMatching(/^agent\[run\.1\]: Starting process with command/),
      'agent[run.1]: State changed from starting to up',
      'agent[run.1]: Stopping all processes with SIGTERM',
      'agent[run.1]: Stopping remaining processes with SIGKILL',
      'agent[run.1]: Process exited with status 137',
      'agent[run.1]: State changed from up to complete',
    ])
    expect(log.some((line) => line.endsWith('agent[run.1]: Error R12 (Exit timeout) -> At least one process failed to exit within 0.5 seconds of SIGTERM'))).toBe(true)
    expect(log.some((line) => line.endsWith('agent[api]: Stopped run.1 by ann'))).toBe(true)
    expect(processAlive(pid)).toBe(false)
    expect((await shop.dynos()).map((dyno) => dyno.name)).toEqual(['web.1', 'worker.1'])
  })

  it('stops an attached run, on a terminal too: its client gets the status', async () => {
    const shop = await deployedShop()
    const run = await attachedRun(shop.home, 'shop')
    run.request({command: ['sh', '-c', 'echo ready; exec sleep 600'], tty: {rows: 24, cols: 80}})
    await eventually(async () => run.out.stdout, (stdout) => stdout.includes('ready'))
    expect((await stop(shop, 'run.1')).status).toBe(200)
    await run.closed
    expect(run.out.exit).toEqual({status: 143})
  })

  it('answers 404 naming a dyno there is none of, and 409 while another connection holds the deploy lock', async () => {
    const shop = await deployedShop()
    expect(await stop(shop, 'web.2')).toMatchObject({status: 404, json: {message: 'app shop has no dyno named web.2'}})
    expect(await stop(shop, 'web')).toMatchObject({status: 404, json: {message: 'app shop has no dyno named web'}})
    expect(await stop(shop, 'run.1')).toMatchObject({status: 404, json: {message: 'app shop has no dyno named run.1'}})
    expect(await shop.call('POST', '/apps/nope/dynos/web.1/actions/stop')).toMatchObject({status: 404, json: {message: 'no app named nope'}})
    const lock = await holdLock(shop.home, 'shop')
    expect(await stop(shop, 'web.1')).toEqual({status: 409, json: {id: 'conflict', message: `app shop is being deployed by bob since ${lock.since}; wait, or retry when that deploy ends`}})
    expect(await stop(shop, 'web.1', {'dev-lock': lock.token})).toEqual({status: 200, json: {stopped: 'web.1'}})
    lock.release()
  })
})
