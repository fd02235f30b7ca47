import {chmod, mkdir, readdir, readFile, writeFile} from 'node:fs/promises'
import {request} from 'node:http'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {packSource} from '../../src/slug/pack-source.js'
import {attachedRun, eventually, startAgent} from '../support/agent.js'
import {get} from '../support/http-load.js'
import {processAlive} from '../support/processes.js'
import {tempApp} from '../support/temp-app.js'
import {deployedShop, holdLock} from './deployed-shop.js'

/** GET over the agent socket, kept open: resolves with all it got once the agent ends the answer. */
function tail(home: string, path: string): {started: Promise<void>; ended: Promise<string>} {
  let text = ''
  let started!: () => void
  const ended = new Promise<string>((resolve, reject) => {
    request({socketPath: join(home, 'agent.sock'), path}, (res) => {
      started()
      res.on('data', (chunk: Buffer) => (text += chunk.toString()))
      res.on('end', () => resolve(text))
    })
      .on('error', reject)
      .end()
  })
  return {started: new Promise((resolve) => (started = resolve)), ended}
}

describe('destroying an app (bundled agent, real processes)', () => {
  it('stops its dynos and runs, frees its domains, removes its files, and leaves the name free for a new app', async () => {
    const agent = await deployedShop({stop_grace_seconds: 0.5})
    await agent.deploy('blog')
    await agent.call('PATCH', '/apps/blog/config-vars', {GREETING: 'blog'})
    expect((await agent.call('POST', '/apps/shop/domains', {hostname: 'shop.example.com'})).status).toBe(201)
    expect((await get(agent.routerPort)).body).toMatch(/^hello from web\.1 of v1/)
    await agent.call('PATCH', '/apps/shop/formation', {updates: [{type: 'worker', quantity: 1}]})
    await agent.call('POST', '/apps/shop/dynos', {command: ['sleep', '600'], attach: false})
    const attached = await attachedRun(agent.home, 'shop')
    attached.request({command: ['sh', '-c', 'trap "" TERM; echo ready; while :; do sleep 0.1; done']})
    await eventually(async () => attached.out.stdout, (stdout) => stdout.includes('ready'))
    const pids = (await eventually(agent.dynos, (list) => list.length === 4 && list.every((dyno) => dyno.state === 'up'))).map((dyno) => dyno.pid!)
    const log = tail(agent.home, '/apps/shop/log?tail=1')
    await log.started

    expect(await agent.call('DELETE', '/apps/shop')).toEqual({status: 200, json: {name: 'shop'}})
    expect(pids.filter(processAlive)).toEqual([])
    await attached.closed
    // It ignored SIGTERM: SIGKILL after the grace.
    expect(attached.out.exit).toEqual({status: 137})
    expect(await log.ended).toContain('agent[run.2]: Stopping all processes with SIGTERM')
    expect(await readdir(join(agent.home, 'apps'))).toEqual(['blog'])
    expect((await agent.call('GET', '/apps')).json).toEqual([expect.objectContaining({name: 'blog'})])
    expect(await agent.call('GET', '/apps/shop/dynos')).toMatchObject({status: 404, json: {message: 'no app named shop'}})
    // Its domain is free, and leads where any Host leads on a host of one app.
    expect(await get(agent.routerPort)).toEqual({status: 200, body: 'blog from web.1 of v2 at unknown\n'})
    expect((await agent.call('POST', '/apps/blog/domains', {hostname: 'shop.example.com'})).status).toBe(201)
    expect(agent.stderr()).toContain('dev-agent: app shop destroyed by ann\n')

    expect(await agent.call('POST', '/apps', {name: 'shop'})).toEqual({status: 201, json: {name: 'shop'}})
    expect((await agent.call('GET', '/apps/shop/releases')).json).toEqual([])
    expect((await agent.call('GET', '/apps/shop/dynos')).json).toEqual([])
    expect((await agent.call('GET', '/apps/shop')).json).toMatchObject({domains: []})
    expect((await agent.call('GET', '/apps/shop/log')).text).toBe('')
  })

  it('is refused while another connection holds the deploy lock, or a build of the app runs', async () => {
    const agent = await deployedShop()
    const lock = await holdLock(agent.home, 'shop')
    expect(await agent.call('DELETE', '/apps/shop')).toEqual({status: 409, json: {id: 'conflict', message: `app shop is being deployed by bob since ${lock.since}; wait, or retry when that deploy ends`}})
    expect((await agent.dynos()).map((dyno) => dyno.state)).toEqual(['up'])
    lock.release()

    // A build whose buildpack waits until it is stopped.
    const root = await tempApp({
      Procfile: 'web: sh web.sh\n',
      'web.sh': 'echo hi\n',
      'app.json': '{"buildpacks": ["./bp"]}\n',
      'bp/bin/detect': '#!/bin/sh\necho slow\n',
      'bp/bin/compile': '#!/bin/sh\necho compiling\nsleep 600 &\nwait\n',
    })
    for (const step of ['detect', 'compile']) await chmod(join(root, 'bp/bin', step), 0o755)
    const source = await packSource({root, secrets: []})
    expect((await agent.call('PUT', `/sources/${source.sha256}`, await readFile(source.path))).status).toBe(201)
    const build = request({socketPath: join(agent.home, 'agent.sock'), method: 'POST', path: '/apps/shop/builds', headers: {'content-type': 'application/json'}})
    build.on('error', () => {})
    build.end(JSON.stringify({source: source.sha256}))
    await new Promise<void>((resolve) => build.once('response', (res) => res.on('data', (chunk: Buffer) => chunk.toString().includes('compiling') && resolve())))
    expect(await agent.call('DELETE', '/apps/shop')).toMatchObject({status: 409, json: {message: expect.stringMatching(/^a build of shop is running since \S+; wait for it to end, or stop it$/)}})
    // Its client gone, the build stops, and the app can go.
    build.destroy()
    expect((await eventually(() => agent.call('DELETE', '/apps/shop'), (answer) => answer.status !== 409)).status).toBe(200)
    expect(await readdir(join(agent.home, 'apps'))).toEqual([])
    await source.dispose()
  })

  it('answers 404 for an unknown app, and removes what an interrupted destroy left at the next start', async () => {
    const agent = await startAgent()
    expect(await agent.call('DELETE', '/apps/nope')).toMatchObject({status: 404, json: {message: 'no app named nope'}})
    await agent.call('POST', '/apps', {name: 'shop'})
    // An agent stopped between the rename and the removal leaves a tombstone.
    const tombstone = join(agent.home, 'apps', '.destroyed-old-1a2b3c4d')
    await mkdir(join(tombstone, 'releases', 'v1'), {recursive: true})
    await writeFile(join(tombstone, 'config.json'), '{}\n')
    expect((await agent.call('GET', '/apps')).json).toEqual([{name: 'shop', disk_bytes: 3}])
    agent.child.kill('SIGTERM')
    await new Promise((resolve) => agent.child.once('exit', resolve))

    const again = await startAgent({home: agent.home})
    expect(await readdir(join(again.home, 'apps'))).toEqual(['shop'])
    expect((await again.call('GET', '/apps')).json).toEqual([expect.objectContaining({name: 'shop'})])
  })
})
