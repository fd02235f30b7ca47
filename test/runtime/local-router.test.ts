import {createServer, request} from 'node:http'

import {describe, expect, it} from 'vitest'

import {connectLocalControl} from '../../src/runtime/local-control.js'
import {freePort} from '../support/free-port.js'
import {startInApp} from '../support/start-harness.js'

/** A web process that answers with its name, after `WAIT_MS` if set (a slow boot). */
const web = `node -e "setTimeout(() => require('http').createServer((q, s) => s.end(process.env.PS)).listen(process.env.PORT), Number(process.env.WAIT_MS || 0))"`

/**
 * A web process that closes its server on SIGTERM and exits once it has closed, as well-behaved
 * apps do (so a connection held open keeps it running); /slow answers after 1 s.
 */
const CLOSING_WEB = `const server = require('http').createServer((q, s) => setTimeout(() => s.end(process.env.PS), q.url === '/slow' ? 1000 : 0)).listen(process.env.PORT)
process.on('SIGTERM', () => server.close(() => { console.log('closed'); process.exit(0) }))
`

function get(port: number, path = '/'): Promise<{status: number; body: string}> {
  return new Promise((resolve, reject) => {
    request({host: '127.0.0.1', port, path, agent: false}, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => (body += chunk.toString()))
      res.on('end', () => resolve({status: res.statusCode!, body}))
    })
      .on('error', reject)
      .end()
  })
}

describe('dev start --router (real processes, real HTTP)', () => {
  it('balances requests over web.N, logs them as router lines, and holds requests while the web processes boot', async () => {
    const routerPort = await freePort()
    const base = await freePort()
    const run = await startInApp({Procfile: `web: ${web}\nworker: sleep 30\n`}, {formation: 'web=2,worker=1', port: base, router: routerPort}, {WAIT_MS: '300'})
    await run.waitFor(/router listening on http:\/\/localhost:\d+/)
    // Sent before any web process listens: it waits for one instead of failing.
    const answers = [await get(routerPort)]
    await run.waitForCount(/^web\.\d +\| /, 2)
    for (let i = 0; i < 3; i++) answers.push(await get(routerPort, `/n?i=${i}`))
    expect(answers.every((answer) => answer.status === 200)).toBe(true)
    expect(new Set(answers.map((answer) => answer.body))).toEqual(new Set(['web.1', 'web.2']))
    await run.waitForCount(/^router +\| at=info method=GET path="\/(n\?i=\d)?" host=127\.0\.0\.1 request_id=\S+ fwd="127\.0\.0\.1" dyno=web\.[12] connect=\d+ms service=\d+ms status=200 bytes=5 protocol=http$/, 4)
    run.signals.emit('SIGTERM')
    expect(await run.status).toBe(143)
  })

  it('answers with a 503 once the web processes have crashed, and refuses a busy router port', async () => {
    const routerPort = await freePort()
    const run = await startInApp({Procfile: 'web: exit 3\n'}, {port: await freePort(), router: routerPort, restart: 'always'})
    await run.waitFor(/router listening/)
    await run.waitFor(/web\.1 +\| exited with code 3/)
    const answer = await get(routerPort)
    expect(answer.status).toBe(503)
    await run.waitFor(/^router +\| at=error code=H1[09] /)
    run.signals.emit('SIGTERM')
    await run.status

    // The port taken by something else: dev says so and starts nothing.
    const holder = createServer()
    await new Promise<void>((resolve) => holder.listen(routerPort, resolve))
    const busy = await startInApp({Procfile: `web: ${web}\n`}, {port: await freePort(), router: routerPort})
    await expect(busy.status).rejects.toThrow(`the router cannot listen on port ${routerPort} (EADDRINUSE); pick another with --router=PORT`)
    expect(busy.lines().some((line) => line.startsWith('web.1'))).toBe(false)
    holder.close()

    // The port a process is to get: said before anything starts.
    const clashing = await startInApp({Procfile: `web: ${web}\n`}, {port: routerPort, router: routerPort})
    await expect(clashing.status).rejects.toThrow(`the router's port ${routerPort} is also web.1's PORT; pick another with --router=PORT, or another base port with --port`)
    expect(clashing.lines().some((line) => line.startsWith('web.1'))).toBe(false)
  })

  it('holds requests while web.1 restarts instead of answering H10, and lets a web process close at once on Ctrl-C', async () => {
    const routerPort = await freePort()
    // A stop timeout (3 s) shorter than the router keeps an idle connection to a dyno (4 s).
    const run = await startInApp({Procfile: 'web: node server.js\n', 'server.js': CLOSING_WEB}, {port: await freePort(), router: routerPort, timeout: 3})
    await run.waitFor(/router listening/)
    expect(await get(routerPort)).toMatchObject({status: 200, body: 'web.1'})
    const client = (await connectLocalControl(run.root))!
    // Requests before, during and after the restart of the only web process: all answered by it.
    let sending = true
    const statuses: number[] = []
    const load = (async () => {
      while (sending) statuses.push((await get(routerPort)).status)
    })()
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect((await client.call('DELETE', '/apps/myapp/dynos/web.1')).json).toEqual({restarted: ['web.1']})
    await run.waitForCount(/^web\.1 +\| started with pid/, 2)
    await new Promise((resolve) => setTimeout(resolve, 300))
    sending = false
    await load
    client.close()
    expect(statuses.length).toBeGreaterThan(2)
    expect(statuses.filter((status) => status !== 200)).toEqual([])
    expect(run.lines().filter((line) => / code=H/.test(line))).toEqual([])
    // Ctrl-C with a request in flight: it is answered, then the connection is not kept, so the
    // server closes and the process exits by itself, before the stop timeout would SIGKILL it.
    const slow = get(routerPort, '/slow')
    await new Promise((resolve) => setTimeout(resolve, 300))
    run.signals.emit('SIGINT')
    expect(await slow).toMatchObject({status: 200, body: 'web.1'})
    expect(await run.status).toBe(130)
    // Closed twice: once for the restart, once for the stop.
    expect(run.lines().filter((line) => /^web\.1 +\| closed$/.test(line))).toHaveLength(2)
    expect(run.lines().filter((line) => /SIGKILL/.test(line))).toEqual([])
  })
})

