import {appendFile, copyFile, readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {setupHost} from '../../src/remote/host-setup.js'
import {connectSsh} from '../../src/remote/ssh-connection.js'
import {resolveSshTarget} from '../../src/remote/ssh-target.js'
import {eventually} from '../support/agent.js'
import {deployedApp} from '../support/deployed-app.js'
import {devAsync, psDynos} from '../support/dev-async.js'
import {startLoad} from '../support/http-load.js'
import {processAlive} from '../support/processes.js'
import {projectRoot} from '../support/run-bin.js'

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('reliability: the agent killed under load (real sshd host)', () => {
  it('kill -9 of the agent, then its restart: the same dynos are adopted, nothing is duplicated or lost', async () => {
    const {hosts, env, root} = await deployedApp(1)
    const host = hosts[0]!
    expect((await devAsync(['scale', 'web=2', 'worker=1'], {cwd: root, env})).status).toBe(0)
    expect((await devAsync(['config', 'set', 'GREETING=kept'], {cwd: root, env})).status).toBe(0)
    const before = await psDynos(root, env)
    const ledger = await readFile(join(host.agentHome, 'apps/shop/releases.jsonl'), 'utf8')
    const config = await readFile(join(host.agentHome, 'apps/shop/config.json'), 'utf8')
    const agentPid = Number(await readFile(join(host.agentHome, 'agent.pid'), 'utf8'))

    const load = startLoad([host.routerPort])
    await pause(300)
    process.kill(agentPid, 'SIGKILL')
    await eventually(async () => processAlive(agentPid), (alive) => !alive)
    // A host without systemd: the next `dev hosts setup` starts the agent again (systemd's Restart=always elsewhere).
    const killedAt = Date.now()
    const setup = await devAsync(['hosts', 'setup', 'vps1', '--router-port', String(host.routerPort)], {cwd: root, env})
    expect(setup.status, setup.stderr).toBe(0)
    const after = await eventually(
      () => psDynos(root, env),
      (dynos) => dynos.length === before.length && dynos.every((dyno) => dyno.state === 'up'),
    )
    const backMs = Date.now() - killedAt
    await pause(300)
    const counts = await load.stop()
    console.log(`agent kill -9 and restart under load: formation back ${backMs} ms after the restart began;`, counts)

    // The same processes, adopted: none restarted, none twice.
    expect(after.map((dyno) => `${dyno.name} ${dyno.pid}`).sort()).toEqual(before.map((dyno) => `${dyno.name} ${dyno.pid}`).sort())
    expect(await readFile(join(host.agentHome, 'apps/shop/releases.jsonl'), 'utf8')).toBe(ledger)
    expect(await readFile(join(host.agentHome, 'apps/shop/config.json'), 'utf8')).toBe(config)
    // The load's lines have pushed it out of the 1,500 kept in memory; the log file has it.
    expect(await readFile(join(host.agentHome, 'apps/shop/logs/app.log'), 'utf8')).toMatch(/agent\[web\.1\]: Adopted running process \d+ after an agent restart/)
    // While the agent was down its router refused connections; once back it never answered for a missing app.
    expect(counts.other).toEqual([])
    expect(counts.ok).toBeGreaterThan(0)
  }, 90_000)

  it('an agent upgrade by dev hosts setup under load: no request fails, the same dynos are adopted', async () => {
    const {hosts, env, root} = await deployedApp(1)
    const host = hosts[0]!
    expect((await devAsync(['scale', 'web=2', 'worker=1'], {cwd: root, env})).status).toBe(0)
    const before = await psDynos(root, env)
    const ledger = await readFile(join(host.agentHome, 'apps/shop/releases.jsonl'), 'utf8')
    const oldPid = Number(await readFile(join(host.agentHome, 'agent.pid'), 'utf8'))
    // A newer build of the agent: the same code, another sha256.
    const newer = join(root, 'agent-newer.cjs')
    await copyFile(join(projectRoot, 'dist/agent.cjs'), newer)
    await appendFile(newer, '\n// a newer build\n')

    const ssh = await connectSsh(await resolveSshTarget('vps1', env), {env})
    const said: string[] = []
    const load = startLoad([host.routerPort, host.routerPort])
    try {
      await pause(300)
      const upgraded = await setupHost(ssh, {agentFile: newer, say: (line) => said.push(line)})
      expect(upgraded.pid).not.toBe(oldPid)
      expect(upgraded.file).toMatch(/\/agent\/[0-9a-f]{64}\/agent\.cjs$/)
      await pause(300)
    } finally {
      ssh.close()
    }
    const counts = await load.stop()
    console.log('agent upgrade (dev hosts setup, handover) under load:', counts, said)
    expect(said.at(-1)).toMatch(/^agent \S+ running \(pid \d+\), router on port \d+; no connection was refused$/)
    expect(processAlive(oldPid)).toBe(false)
    const after = await psDynos(root, env)
    expect(after.map((dyno) => `${dyno.name} ${dyno.pid} ${dyno.state}`).sort()).toEqual(before.map((dyno) => `${dyno.name} ${dyno.pid} up`).sort())
    expect(await readFile(join(host.agentHome, 'apps/shop/releases.jsonl'), 'utf8')).toBe(ledger)
    expect(counts).toMatchObject({errors: 0, other: []})
    expect(counts.ok).toBeGreaterThan(50)
  }, 90_000)

  it('two deploys at once: one goes through, the other is refused naming who holds the lock and since when', async () => {
    const {env, root} = await deployedApp(1)
    const [first, second] = await Promise.all([devAsync(['deploy', '-m', 'one'], {cwd: root, env: {...env, DEV_USER: 'ann'}}), devAsync(['deploy', '-m', 'two'], {cwd: root, env: {...env, DEV_USER: 'bob'}})])
    const results = [first, second]
    console.log('two deploys at once: exit statuses', results.map((result) => result.status))
    const refused = results.filter((result) => result.status !== 0)
    // Both may go through one after the other when the first is done before the second asks; never both at once.
    for (const result of refused) expect(result.stderr).toMatch(/error: vps1: app shop is being deployed by (ann|bob) since \d{4}-\d\d-\d\dT[\d:.]+Z/)
    expect(results.some((result) => result.status === 0)).toBe(true)
  }, 90_000)
})
