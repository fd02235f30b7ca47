import {describe, expect, it} from 'vitest'

import {eventually} from '../support/agent.js'
import {deployedApp} from '../support/deployed-app.js'
import {devAsync, psDynos} from '../support/dev-async.js'
import {startLoad} from '../support/http-load.js'
import {processAlive} from '../support/processes.js'

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('reliability: dynos that fail under load (real sshd host, agent and router)', () => {
  it('kill -9 of one web dyno of two: requests go to the other, at most those in flight fail, and it is back', async () => {
    const {hosts, env, root} = await deployedApp(1)
    expect((await devAsync(['scale', 'web=2'], {cwd: root, env})).status).toBe(0)
    const victim = (await psDynos(root, env)).find((dyno) => dyno.name === 'web.1')!
    const clients = 2
    const load = startLoad(Array.from({length: clients}, () => hosts[0]!.routerPort))
    await pause(300)
    process.kill(victim.pid!, 'SIGKILL')
    const back = await eventually(
      async () => (await psDynos(root, env)).find((dyno) => dyno.name === 'web.1'),
      (dyno) => dyno?.state === 'up' && dyno.pid !== victim.pid,
    )
    await pause(300)
    const counts = await load.stop()
    console.log('kill -9 of web.1 of 2 under load:', counts)
    expect(back).toMatchObject({state: 'up', restarts: 1})
    // A request in flight on the killed dyno may fail (one per client at most); none goes unanswered.
    expect(counts.errors).toBe(0)
    expect(counts.other.length).toBeLessThanOrEqual(clients)
    for (const status of counts.other) expect(status).toBe(503)
    expect(counts.ok).toBeGreaterThan(0)
  }, 60_000)

  it('a run that ignores SIGTERM is killed after the grace, its grandchildren too, and R12 is logged', async () => {
    const {env, root} = await deployedApp(1)
    const started = await devAsync(['run', '--host', 'vps1', '--detached', `trap '' TERM; sleep 300 & echo "child $!"; wait; wait`], {cwd: root, env})
    expect(started.status, started.stderr).toBe(0)
    const logged = await eventually(async () => (await devAsync(['logs', '--ps', 'run.1'], {cwd: root, env})).stdout, (text) => /child \d+/.test(text))
    const child = Number(/child (\d+)/.exec(logged)![1])
    expect(processAlive(child)).toBe(true)
    expect(await devAsync(['stop', 'run.1'], {cwd: root, env})).toMatchObject({status: 0, stdout: 'Stopped run.1\n'})
    expect(processAlive(child)).toBe(false)
    const after = (await devAsync(['logs', '--ps', 'run.1', '--source', 'agent'], {cwd: root, env})).stdout
    expect(after).toMatch(/agent\[run\.1\]: Error R12 \(Exit timeout\) -> At least one process failed to exit within 3 seconds of SIGTERM/)
  }, 60_000)

  it('a crash-looping worker backs off, shows as crashed, and a rollback brings it back', async () => {
    const {env, root} = await deployedApp(1)
    expect((await devAsync(['scale', 'worker=1'], {cwd: root, env})).status).toBe(0)
    expect((await devAsync(['config', 'set', 'WORKER_CRASH=1'], {cwd: root, env})).status).toBe(0)
    // Test hosts back off from 0.2 s, doubling up to 1 s.
    const log = await eventually(async () => (await devAsync(['logs', '--ps', 'worker.1', '--source', 'agent'], {cwd: root, env})).stdout, (text) => /Restarting in 1 s/.test(text))
    const waits = [...log.matchAll(/Restarting in ([\d.]+) s \(crash (\d+) in a row\)/g)].map((match) => Number(match[1]))
    console.log('crash loop waits (s):', waits)
    expect(waits.slice(0, 4)).toEqual([0.2, 0.4, 0.8, 1])
    const crashed = await eventually(async () => (await psDynos(root, env)).find((dyno) => dyno.name === 'worker.1'), (dyno) => dyno?.state === 'crashed')
    expect(crashed?.state).toBe('crashed')
    expect((await devAsync(['rollback'], {cwd: root, env})).status).toBe(0)
    const fixed = await eventually(async () => (await psDynos(root, env)).find((dyno) => dyno.name === 'worker.1'), (dyno) => dyno?.state === 'up' && dyno.release === 'v3')
    expect(fixed).toMatchObject({state: 'up', release: 'v3'})
  }, 60_000)
})
