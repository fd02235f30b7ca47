import {spawn} from 'node:child_process'
import {existsSync, statSync} from 'node:fs'
import {mkdir, writeFile} from 'node:fs/promises'
import {request, type IncomingMessage} from 'node:http'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {afterEach, describe, expect, it} from 'vitest'

import type {AgentClient} from '../../src/runtime/agent-client.js'
import {buildSlug} from '../../src/slug/slug-build.js'
import {connectLocalControl, controlSocketPath} from '../../src/runtime/local-control.js'
import {portInUse} from '../../src/runtime/ports.js'
import {eventually, type AgentDyno} from '../support/agent.js'
import {freePort} from '../support/free-port.js'
import {startInApp, type StartRun} from '../support/start-harness.js'
import {tempApp} from '../support/temp-app.js'

/** A web process that answers with its name, logs each request, and says (in green) where it listens. */
const SERVER = `require('http')
  .createServer((req, res) => { console.log('GET ' + req.url); res.end(process.env.PS) })
  .listen(process.env.PORT, () => console.log('\\u001b[32mlistening\\u001b[39m on ' + process.env.PORT))
process.on('SIGTERM', () => process.exit(0))
`
const WORKER = `console.log('worker ready'); setInterval(() => {}, 1000); process.on('SIGTERM', () => process.exit(0))\n`
const APP = {Procfile: 'web: node server.js\nworker: node worker.js\nrelease: echo migrating\n', 'server.js': SERVER, 'worker.js': WORKER}

/** A line of the log stream: `2026-11-22T07:38:45.079241+00:00 app[web.1]: text`. */
const LOG_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00 (app|dev|router)(\[[^\]]+\])?: /

const runs: StartRun[] = []
const clients: AgentClient[] = []

afterEach(async () => {
  for (const client of clients.splice(0)) client.close()
  for (const run of runs.splice(0)) {
    run.signals.emit('SIGTERM')
    await run.status.catch(() => {})
  }
})

/** A base port whose web.1, web.2 and worker.1 ports are free. */
async function freeBase(): Promise<number> {
  for (;;) {
    const base = await freePort()
    if (base + 100 <= 65_535 && !(await portInUse(base + 1)) && !(await portInUse(base + 100))) return base
  }
}

/** dev start on APP (or `files`), with a client on its control socket once its processes have started. */
async function startControlled(options: Parameters<typeof startInApp>[1] = {}, files: Record<string, string> = APP) {
  const base = options.port ?? (await freeBase())
  const run = await startInApp(files, {port: base, ...options})
  runs.push(run)
  await run.waitFor(/started with pid/)
  const client = (await connectLocalControl(run.root))!
  expect(client).toBeDefined()
  clients.push(client)
  return {run, client, base}
}

async function dynos(client: AgentClient): Promise<AgentDyno[]> {
  const answer = await client.call('GET', '/apps/myapp/dynos')
  expect(answer.status).toBe(200)
  return answer.json
}

/** The processes, once every named one is up. */
async function whenUp(client: AgentClient, names: string[]): Promise<AgentDyno[]> {
  const list = await eventually(
    () => dynos(client),
    (found) => names.every((name) => found.find((dyno) => dyno.name === name)?.state === 'up'),
  )
  for (const name of names) expect(list.find((dyno) => dyno.name === name)?.state, name).toBe('up')
  return list
}

function get(port: number, path = '/'): Promise<string> {
  return new Promise((resolve, reject) => {
    request({host: '127.0.0.1', port, path, agent: false}, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => (body += chunk.toString()))
      res.on('end', () => resolve(body))
    })
      .on('error', reject)
      .end()
  })
}

async function logLines(client: AgentClient, query: string): Promise<string[]> {
  const answer = await client.call('GET', `/apps/myapp/log?${query}`)
  expect(answer.status).toBe(200)
  return answer.text.split('\n').filter(Boolean)
}

/** A Unix socket nothing listens on any more: its server was killed without clearing up. */
async function leaveStaleSocket(path: string): Promise<void> {
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))`, path])
  await new Promise((resolve) => child.once('exit', resolve))
  expect(statSync(path).isSocket()).toBe(true)
}

describe('dev start: the control socket', () => {
  it('listens on .dev/dev.sock (mode 0600) and answers GET /agent', async () => {
    const {run, client} = await startControlled()
    expect(statSync(controlSocketPath(run.root)).mode & 0o777).toBe(0o600)
    const answer = await client.call('GET', '/agent')
    expect(answer.status).toBe(200)
    expect(answer.json).toEqual({local: true, pid: process.pid, root: run.root, started_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/)})
  })

  it('lists the processes in Procfile order, the web one up once it accepts on its PORT', async () => {
    const {client, base} = await startControlled()
    const list = await whenUp(client, ['web.1', 'worker.1'])
    expect(list).toEqual([
      {name: 'web.1', type: 'web', state: 'up', since: expect.any(String), restarts: 0, release: 'local', command: 'node server.js', port: base, pid: expect.any(Number)},
      {name: 'worker.1', type: 'worker', state: 'up', since: expect.any(String), restarts: 0, release: 'local', command: 'node worker.js', port: base + 100, pid: expect.any(Number)},
    ])
    const formation = await client.call('GET', '/apps/myapp/formation')
    expect(formation.json).toEqual([
      {type: 'web', quantity: 1, command: 'node server.js'},
      {type: 'worker', quantity: 1, command: 'node worker.js'},
    ])
  })

  it('answers what it does not serve as the agent does: 404, 405, 400 and 422 with an id and a message', async () => {
    const {client} = await startControlled()
    expect(await client.call('GET', '/apps/myapp/config-vars')).toMatchObject({status: 404, json: {id: 'not_found', message: 'no such resource: /apps/myapp/config-vars'}})
    expect(await client.call('PUT', '/apps/myapp/formation')).toMatchObject({status: 405, json: {id: 'method_not_allowed', message: 'PUT is not allowed on /apps/myapp/formation; use GET or PATCH'}})
    expect(await client.call('PATCH', '/apps/myapp/formation', Buffer.from('{not json'))).toMatchObject({status: 400, json: {id: 'bad_request'}})
    expect(await client.call('PATCH', '/apps/myapp/formation', {updates: [{type: 'clock', quantity: 1}]})).toMatchObject({
      status: 422,
      json: {id: 'invalid_params', message: 'the Procfile has no process type clock; it has web, worker'},
    })
    expect(await client.call('PATCH', '/apps/myapp/formation', {updates: [{type: 'web', quantity: 101}]})).toMatchObject({status: 422, json: {message: expect.stringMatching(/^invalid request body at updates\.0\.quantity: /)}})
    expect(await client.call('DELETE', '/apps/myapp/dynos/clock.1')).toMatchObject({status: 404, json: {message: 'dev start runs no process or process type named clock.1; it runs web.1, worker.1'}})
    expect(await client.call('POST', '/apps/myapp/dynos/web/actions/stop')).toMatchObject({status: 404, json: {id: 'not_found'}})
    expect(await client.call('GET', '/apps/myapp/log?source=agent')).toMatchObject({status: 422, json: {message: 'source must be app, dev or router'}})
  })
})

describe('dev start: scaling through the control socket', () => {
  it('starts web.2 on base + 1, where it answers, and stops it again without ending dev start', async () => {
    const {run, client, base} = await startControlled()
    const scaled = await client.call('PATCH', '/apps/myapp/formation', {updates: [{type: 'web', quantity: 2}]})
    expect(scaled.json).toEqual([
      {type: 'web', quantity: 2, command: 'node server.js'},
      {type: 'worker', quantity: 1, command: 'node worker.js'},
    ])
    const list = await whenUp(client, ['web.1', 'web.2'])
    expect(list.map((dyno) => [dyno.name, dyno.port])).toEqual([
      ['web.1', base],
      ['web.2', base + 1],
      ['worker.1', base + 100],
    ])
    expect(await get(base + 1)).toBe('web.2')
    // The interleaved output shows it as it shows the others.
    await run.waitFor(new RegExp(`^web\\.2 +\\| started with pid \\d+ on port ${base + 1}$`))
    expect(run.lines()).toContain('system   | scaling to web=2')

    const down = await client.call('PATCH', '/apps/myapp/formation', {updates: [{type: 'web', quantity: 1}]})
    expect(down.json[0]).toEqual({type: 'web', quantity: 1, command: 'node server.js'})
    expect((await dynos(client)).map((dyno) => dyno.name)).toEqual(['web.1', 'worker.1'])
    expect(run.lines()).toContain('web.2    | exited with code 0')
    expect(await get(base)).toBe('web.1')
  })

  it('keeps running when scaled to zero, and starts the processes again when scaled back up', async () => {
    const {client} = await startControlled()
    const zero = await client.call('PATCH', '/apps/myapp/formation', {updates: [{type: 'web', quantity: 0}, {type: 'worker', quantity: 0}]})
    expect(zero.json).toEqual([
      {type: 'web', quantity: 0, command: 'node server.js'},
      {type: 'worker', quantity: 0, command: 'node worker.js'},
    ])
    expect(await dynos(client)).toEqual([])
    // Still serving: the socket goes only when dev start ends.
    expect((await client.call('GET', '/agent')).status).toBe(200)
    await client.call('PATCH', '/apps/myapp/formation', {updates: [{type: 'worker', quantity: 2}]})
    expect((await whenUp(client, ['worker.1', 'worker.2'])).map((dyno) => dyno.name)).toEqual(['worker.1', 'worker.2'])
  })

  it('refuses a scale whose ports would pass 65535, and changes nothing', async () => {
    const {client} = await startControlled({port: 65_530}, {Procfile: 'web: sleep 30\n'})
    const refused = await client.call('PATCH', '/apps/myapp/formation', {updates: [{type: 'web', quantity: 7}]})
    expect(refused).toMatchObject({status: 422, json: {id: 'invalid_params', message: 'web.7 would get port 65536, above 65535; pass a lower --port'}})
    expect((await dynos(client)).map((dyno) => dyno.name)).toEqual(['web.1'])
  })
})

describe('dev start: restarting and stopping through the control socket', () => {
  it('restarts web.1 with a new pid, then a type, then everything, without ending dev start', async () => {
    const {run, client} = await startControlled()
    const before = await whenUp(client, ['web.1', 'worker.1'])
    expect((await client.call('DELETE', '/apps/myapp/dynos/web.1')).json).toEqual({restarted: ['web.1']})
    const after = await whenUp(client, ['web.1'])
    expect(after[0]!.pid).not.toBe(before[0]!.pid)
    expect(after[1]!.pid).toBe(before[1]!.pid)
    expect(run.lines()).toContain('system   | restarting web.1')
    expect((await client.call('DELETE', '/apps/myapp/dynos/worker')).json).toEqual({restarted: ['worker.1']})
    expect((await client.call('DELETE', '/apps/myapp/dynos')).json).toEqual({restarted: ['web.1', 'worker.1']})
    const last = await whenUp(client, ['web.1', 'worker.1'])
    expect(last.map((dyno) => dyno.pid)).not.toContain(before[0]!.pid)
    expect(last.map((dyno) => dyno.pid)).not.toContain(before[1]!.pid)
  })

  it('stops worker.1, which starts again as the formation still has it', async () => {
    const {run, client} = await startControlled()
    const before = await whenUp(client, ['worker.1'])
    expect((await client.call('POST', '/apps/myapp/dynos/worker.1/actions/stop')).json).toEqual({stopped: 'worker.1'})
    const after = await whenUp(client, ['worker.1'])
    expect(after.find((dyno) => dyno.name === 'worker.1')!.pid).not.toBe(before.find((dyno) => dyno.name === 'worker.1')!.pid)
    await run.waitForCount(/^worker\.1 +\| started with pid/, 2)
  })
})

describe('dev start: the log through the control socket', () => {
  it('serves the recent lines in the agent format, colours stripped, filtered by ps and source', async () => {
    const {run, client, base} = await startControlled()
    await whenUp(client, ['web.1', 'worker.1'])
    await run.waitFor(/worker ready/)
    await client.call('DELETE', '/apps/myapp/dynos/worker.1')
    await run.waitForCount(/worker ready/, 2)
    const all = await logLines(client, 'lines=1500')
    for (const line of all) expect(line).toMatch(LOG_LINE)
    const texts = all.map((line) => line.replace(/^\S+ /, ''))
    expect(texts).toEqual(expect.arrayContaining([`app[web.1]: listening on ${base}`, 'app[worker.1]: worker ready', 'dev[dev]: restarting worker.1', expect.stringMatching(/^dev\[web\.1\]: started with pid \d+ on port \d+$/)]))

    const web = await logLines(client, 'ps=web.1')
    expect(web.length).toBeGreaterThan(0)
    expect(web.every((line) => line.includes(' app[web.1]: ') || line.includes(' dev[web.1]: '))).toBe(true)
    const workerOutput = await logLines(client, 'ps=worker&source=app')
    expect(workerOutput.map((line) => line.replace(/^\S+ /, ''))).toEqual(['app[worker.1]: worker ready', 'app[worker.1]: worker ready'])
    const devOnly = await logLines(client, 'source=dev&ps=dev')
    expect(devOnly.map((line) => line.replace(/^\S+ /, ''))).toEqual(['dev[dev]: restarting worker.1', 'dev[dev]: sending SIGTERM to 1 process'])
    expect(await logLines(client, 'lines=2')).toEqual(all.slice(-2))
  })

  it('tails the log: a new line follows while the client stays', async () => {
    const {client, base} = await startControlled()
    await whenUp(client, ['web.1'])
    const res: IncomingMessage = await client.request('GET', '/apps/myapp/log?tail=1&lines=0&ps=web.1&source=app')
    expect(res.statusCode).toBe(200)
    let text = ''
    res.on('data', (chunk: Buffer) => (text += chunk.toString()))
    await get(base, '/hello')
    const hello = () => text.split('\n').find((each) => each.endsWith(' app[web.1]: GET /hello'))
    await eventually(async () => hello(), (line) => line !== undefined)
    expect(hello()).toMatch(LOG_LINE)
    expect(text).not.toMatch(/listening/)
    res.destroy()
  })

  it('puts the router lines in the log, and scaling changes where the router sends requests', async () => {
    const routerPort = await freePort()
    const {run, client} = await startControlled({router: routerPort})
    await run.waitFor(/router listening/)
    await client.call('PATCH', '/apps/myapp/formation', {updates: [{type: 'web', quantity: 2}]})
    await whenUp(client, ['web.1', 'web.2'])
    const answered = new Set<string>()
    for (let i = 0; i < 10 && answered.size < 2; i++) answered.add(await get(routerPort))
    expect(answered).toEqual(new Set(['web.1', 'web.2']))
    await client.call('PATCH', '/apps/myapp/formation', {updates: [{type: 'web', quantity: 1}]})
    for (let i = 0; i < 4; i++) expect(await get(routerPort)).toBe('web.1')
    const routed = await logLines(client, 'ps=router')
    expect(routed.length).toBeGreaterThanOrEqual(6)
    for (const line of routed) expect(line).toMatch(/^\S+ router: at=info method=GET path="\/" .* dyno=web\.[12] /)
  })
})

describe('dev start --watch and --slug: the control socket follows', () => {
  it('shows the new Procfile after a reload under --watch, and scales its types', async () => {
    const {run, client} = await startControlled({watch: []})
    await whenUp(client, ['web.1', 'worker.1'])
    await sleep(300)
    await writeFile(join(run.root, 'Procfile'), 'web: node server.js\nworker: node worker.js\nclock: node worker.js\n')
    await run.waitFor(/^clock\.1 +\| started with pid/)
    const formation = await eventually(
      async () => (await client.call('GET', '/apps/myapp/formation')).json as unknown[],
      (items) => items.length === 3,
    )
    expect(formation).toEqual([
      {type: 'web', quantity: 1, command: 'node server.js'},
      {type: 'worker', quantity: 1, command: 'node worker.js'},
      {type: 'clock', quantity: 1, command: 'node worker.js'},
    ])
    await client.call('PATCH', '/apps/myapp/formation', {updates: [{type: 'clock', quantity: 2}]})
    expect((await whenUp(client, ['clock.1', 'clock.2'])).map((dyno) => dyno.name)).toEqual(['web.1', 'worker.1', 'clock.1', 'clock.2'])
  })

  it('runs a process scaled up under --slug from the slug', async () => {
    const root = await tempApp(APP)
    const manifest = await buildSlug({root, secrets: []})
    const {client, base} = await startControlled({root, slug: manifest.id})
    await client.call('PATCH', '/apps/myapp/formation', {updates: [{type: 'web', quantity: 2}]})
    await whenUp(client, ['web.2'])
    expect(await get(base + 1)).toBe('web.2')
  })
})

describe('dev start: one control socket per app root', () => {
  it('replaces a socket left by a run that crashed, and a plain leftover file', async () => {
    for (const leftover of ['socket', 'file']) {
      const root = await tempApp(APP)
      const path = controlSocketPath(root)
      await mkdir(join(root, '.dev'))
      if (leftover === 'socket') await leaveStaleSocket(path)
      else await writeFile(path, 'left over')
      const {client} = await startControlled({root})
      expect((await client.call('GET', '/agent')).json.pid).toBe(process.pid)
      expect(statSync(path).isSocket()).toBe(true)
    }
  })

  it('connectLocalControl finds no dev start at a stale socket, and removes it', async () => {
    const root = await tempApp(APP)
    expect(await connectLocalControl(root)).toBeUndefined()
    await mkdir(join(root, '.dev'))
    await leaveStaleSocket(controlSocketPath(root))
    expect(await connectLocalControl(root)).toBeUndefined()
    expect(existsSync(controlSocketPath(root))).toBe(false)
  })

  it('refuses a second dev start in the same root while the first runs, before starting anything', async () => {
    const {run, client} = await startControlled()
    const second = await startInApp({}, {root: run.root, port: await freePort()})
    await expect(second.status).rejects.toThrow(`dev start is already running in ${run.root} (pid ${process.pid}); stop it first`)
    expect(second.lines().filter((line) => /started with pid/.test(line))).toEqual([])
    expect((await client.call('GET', '/agent')).status).toBe(200)
  })

  it('removes the socket (and the .dev it made) when dev start ends', async () => {
    const {run} = await startControlled()
    const path = controlSocketPath(run.root)
    expect(existsSync(path)).toBe(true)
    run.signals.emit('SIGTERM')
    expect(await run.status).toBe(143)
    expect(existsSync(path)).toBe(false)
    expect(existsSync(join(run.root, '.dev'))).toBe(false)
    expect(await connectLocalControl(run.root)).toBeUndefined()
  })

  it('runs without the socket, saying so, when its path is too long for a Unix socket', async () => {
    const root = join(await tempApp(), 'a-directory-name-long-enough'.repeat(4))
    await mkdir(root)
    await writeFile(join(root, 'Procfile'), 'web: sleep 30\n')
    const run = await startInApp({}, {root, port: await freePort()})
    runs.push(run)
    await run.waitFor(/started with pid/)
    expect(run.lines()).toContainEqual(expect.stringMatching(/^system \| warning: .*\/\.dev\/dev\.sock is too long for a Unix socket \(\d+ bytes, at most 10\d\); dev ps, scale, restart, stop and logs cannot reach this dev start$/))
    expect(existsSync(join(root, '.dev'))).toBe(false)
    expect(await connectLocalControl(root)).toBeUndefined()
  })
})
