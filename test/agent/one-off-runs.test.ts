import {describe, expect, it} from 'vitest'

import {agentAppSlug, attachedRun, eventually, startAgent} from '../support/agent.js'
import {processAlive} from '../support/processes.js'

/** An agent with app `shop` at v1 (the agent-app slug) and GREETING set. */
async function shop(settings: Record<string, unknown> = {}) {
  const agent = await startAgent({settings})
  const slug = await agentAppSlug()
  await agent.call('POST', '/apps', {name: 'shop'})
  await agent.call('PUT', `/slugs/${slug.sha256}`, slug.bytes)
  expect((await agent.call('POST', '/apps/shop/releases', {slug: slug.sha256})).status).toBe(201)
  await agent.call('PATCH', '/apps/shop/config-vars', {GREETING: 'hi'})
  const log = async () => (await agent.call('GET', '/apps/shop/log?lines=1500')).text.split('\n')
  return {...agent, log}
}

describe('one-off runs (bundled agent, real processes)', () => {
  it('runs an attached command with stdin, stdout and stderr apart, the release env, and its exit status', async () => {
    const agent = await shop()
    const run = await attachedRun(agent.home, 'shop')
    run.request({command: ['sh', '-c', 'read line; echo "got $line as $DYNO of $DEV_RELEASE: $GREETING $EXTRA"; echo oops >&2; exit 7'], env: {EXTRA: 'x'}})
    run.stdin('hello\n')
    run.stdinEnd()
    await run.closed
    expect(run.out).toMatchObject({stdout: 'got hello as run.1 of v2: hi x\n', stderr: 'oops\n', exit: {status: 7}})
    const log = await eventually(agent.log, (lines) => lines.some((line) => line.endsWith('agent[run.1]: Process exited with status 7')))
    expect(log.some((line) => line.endsWith("agent[run.1]: Starting process with command `sh -c read line; echo \"got $line as $DYNO of $DEV_RELEASE: $GREETING $EXTRA\"; echo oops >&2; exit 7` by ann"))).toBe(true)
    // Attached output belongs to the client, not to the log stream.
    expect(log.some((line) => line.includes('app[run.1]'))).toBe(false)
  })

  it('runs a Procfile type by name and passes signals to it', async () => {
    const agent = await shop()
    const run = await attachedRun(agent.home, 'shop')
    run.request({command: ['worker']})
    await eventually(async () => run.out.stdout, (text) => text.includes('working'))
    expect((await agent.call('GET', '/apps/shop/dynos')).json).toContainEqual(expect.objectContaining({name: 'run.1', type: 'run', state: 'up', command: 'worker'}))
    run.signal('SIGTERM')
    await run.closed
    expect(run.out).toMatchObject({stdout: 'run.1: working\nrun.1: SIGTERM, done\n', exit: {status: 0}})
    expect((await agent.call('GET', '/apps/shop/dynos')).json.map((dyno: {name: string}) => dyno.name)).toEqual(['web.1'])
  })

  it('sends SIGHUP when the client goes away, then SIGKILL after the grace (R16)', async () => {
    const agent = await shop({stop_grace_seconds: 0.5})
    const run = await attachedRun(agent.home, 'shop')
    run.request({command: ['sh', '-c', 'trap "" HUP; echo "pid $$"; while true; do sleep 0.1; done']})
    const pid = Number((await eventually(async () => run.out.stdout, (text) => text.includes('pid')))
      .trim()
      .split(' ')[1])
    run.socket.destroy()
    const log = await eventually(agent.log, (lines) => lines.some((line) => line.includes('agent[run.1]: Process exited')))
    expect(log.some((line) => line.endsWith('agent[run.1]: Client connection closed. Sending SIGHUP to all processes')), log.join('\n')).toBe(true)
    expect(log.some((line) => line.includes('agent[run.1]: Error R16 (Detached)'))).toBe(true)
    expect(processAlive(pid)).toBe(false)
  })

  it('runs a detached command with its output in the log stream', async () => {
    const agent = await shop()
    const started = await agent.call('POST', '/apps/shop/dynos', {command: ['sh', '-c', 'echo "detached $DYNO $GREETING"'], attach: false})
    expect(started).toEqual({status: 201, json: {name: 'run.1', attach: false}})
    const log = await eventually(agent.log, (lines) => lines.some((line) => line.endsWith('agent[run.1]: Process exited with status 0')))
    expect(log.some((line) => line.endsWith('app[run.1]: detached run.1 hi'))).toBe(true)
    expect(log.some((line) => line.endsWith('by ann (detached)'))).toBe(true)
  })

  it('refuses bad run requests clearly', async () => {
    const agent = await shop()
    expect(await agent.call('POST', '/apps/shop/dynos', {command: ['true']})).toMatchObject({status: 400, json: {message: expect.stringMatching(/^an attached run is an upgraded connection/)}})
    expect(await agent.call('POST', '/apps/shop/dynos', {command: [], attach: false})).toMatchObject({status: 422, json: {message: 'invalid request body at command: command needs at least one word'}})
    const bad = await attachedRun(agent.home, 'shop')
    bad.request({command: 'not a list'})
    await bad.closed
    expect(bad.out.exit?.error).toMatch(/^invalid run request at command/)
    const nowhere = await attachedRun(agent.home, 'nope')
    await nowhere.closed
    expect(nowhere.out.refusal).toMatch(/^HTTP\/1.1 404 [^]*no app named nope/)
    await agent.call('POST', '/apps', {name: 'empty'})
    const empty = await attachedRun(agent.home, 'empty')
    empty.request({command: ['true']})
    await empty.closed
    expect(empty.out.exit).toEqual({error: 'app empty runs no slug yet; deploy one before running commands'})
  })
})
