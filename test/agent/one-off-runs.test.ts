import {describe, expect, it} from 'vitest'

import {encodeFrame, Frame, MAX_FRAME_BYTES} from '../../src/agent/run-protocol.js'
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

/** The pid a run printed as `pid N` (its first line). */
async function printedPid(run: Awaited<ReturnType<typeof attachedRun>>): Promise<number> {
  return Number((await eventually(async () => run.out.stdout, (text) => text.includes('pid'))).trim().split(' ')[1])
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
    const pid = await printedPid(run)
    run.socket.destroy()
    const log = await eventually(agent.log, (lines) => lines.some((line) => line.includes('agent[run.1]: Process exited')))
    expect(log.some((line) => line.endsWith('agent[run.1]: Client connection closed. Sending SIGHUP to all processes')), log.join('\n')).toBe(true)
    expect(log.some((line) => line.includes('agent[run.1]: Error R16 (Detached)'))).toBe(true)
    expect(processAlive(pid)).toBe(false)
  })

  it('hangs up on a run whose client sent a bad frame', async () => {
    const agent = await shop()
    const run = await attachedRun(agent.home, 'shop')
    run.request({command: ['sh', '-c', 'echo "pid $$"; exec sleep 600']})
    const pid = await printedPid(run)
    // The head of a stdin frame longer than any frame may be.
    run.socket.write(encodeFrame(Frame.stdin).fill(0xff, 1))
    await run.closed
    expect(run.out.exit).toEqual({error: `a frame of ${0xffffffff} bytes is over the limit of ${MAX_FRAME_BYTES}`})
    const log = await eventually(agent.log, (lines) => lines.some((line) => line.endsWith('agent[run.1]: Process exited with status 129')))
    expect(log.some((line) => line.endsWith('agent[run.1]: Client connection closed. Sending SIGHUP to all processes'))).toBe(true)
    expect(processAlive(pid)).toBe(false)
  })

  it('starts no run for a client gone before it began, or hangs up on it at once', async () => {
    const agent = await shop()
    const run = await attachedRun(agent.home, 'shop')
    run.request({command: ['sleep', '600']})
    // Gone with its request: the agent has not even looked the app up yet.
    run.socket.end()
    await run.closed
    const notStarted = 'agent[api]: Attached run by ann not started: the client went away first'
    const log = await eventually(agent.log, (lines) => lines.some((line) => line.includes('agent[run.1]: Process exited') || line.endsWith(notStarted)))
    const ran = log.filter((line) => line.includes('agent[run.1]')).map((line) => line.split('agent[run.1]: ')[1])
    // Whether the agent sees the client go before or after it starts the run depends on how the bytes arrive.
    if (ran.length === 0) expect(log.some((line) => line.endsWith(notStarted)), log.join('\n')).toBe(true)
    else expect(ran).toEqual([
      'Starting process with command `sleep 600` by ann',
      'State changed from starting to up',
      'Client connection closed. Sending SIGHUP to all processes',
      'Process exited with status 129',
      'State changed from up to complete',
    ])
  })

  it('stops reading stdin frames while the run does not read its stdin', async () => {
    const agent = await shop()
    const run = await attachedRun(agent.home, 'shop')
    // Reads its stdin slowly, and says how much it has read when it gets SIGUSR2.
    const script = [
      'let read = 0',
      "process.on('SIGUSR2', () => process.stdout.write(`read ${read}\\n`))",
      "process.stdin.on('data', (chunk) => { read += chunk.length; process.stdin.pause(); setTimeout(() => process.stdin.resume(), 5) })",
      "process.stdin.on('end', () => process.stdout.write(`total ${read}\\n`))",
      "process.stdout.write('ready\\n')",
    ].join('\n')
    run.request({command: [process.execPath, '-e', script]})
    await eventually(async () => run.out.stdout, (text) => text.includes('ready'))
    const mib = Buffer.alloc(1024 * 1024, 'x')
    for (let i = 0; i < 8; i++) run.socket.write(encodeFrame(Frame.stdin, mib))
    run.signal('SIGUSR2')
    run.stdinEnd()
    await run.closed
    expect(run.out.exit).toEqual({status: 0})
    // The signal came after 8 MiB of stdin: the agent passed it on only once the run had read nearly all of that.
    expect(Number(/read (\d+)/.exec(run.out.stdout)?.[1])).toBeGreaterThan(7 * 1024 * 1024)
    expect(run.out.stdout).toContain(`total ${8 * 1024 * 1024}`)
  })

  it('exits on SIGTERM with an attached run open, stopping the run', async () => {
    const agent = await shop()
    const run = await attachedRun(agent.home, 'shop')
    run.request({command: ['sh', '-c', 'echo "pid $$"; exec sleep 600']})
    const pid = await printedPid(run)
    const exited = new Promise((resolve) => agent.child.once('exit', (code, signal) => resolve({code, signal})))
    agent.child.kill('SIGTERM')
    expect(await exited).toEqual({code: 0, signal: null})
    await run.closed
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
