import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {readdir, readFile, stat} from 'node:fs/promises'
import {request} from 'node:http'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {agentAppSlug, hostileSlug, startAgent} from '../support/agent.js'
import {projectRoot} from '../support/run-bin.js'
import {tempApp} from '../support/temp-app.js'

describe('the agent API (bundled agent, real socket)', () => {
  it('prints its version', async () => {
    const child = spawn(process.execPath, [join(projectRoot, 'dist/agent.cjs'), 'version'])
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    await new Promise((resolve) => child.once('close', resolve))
    expect(out).toMatch(/^dev-agent \d+\.\d+\.\d+ node-v\d+/)
  })

  it('bridges stdin and stdout to the API socket with dial-stdio, as an SSH exec channel runs it', async () => {
    const {home, call} = await startAgent()
    await call('POST', '/apps', {name: 'shop'})
    const child = spawn(process.execPath, [join(projectRoot, 'dist/agent.cjs'), 'dial-stdio'], {env: {...process.env, DEV_AGENT_HOME: home}})
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    // The request is written and stdin left open, as an SSH channel stays open while the answer comes.
    child.stdin.write('GET /apps HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n')
    const status = await new Promise((resolve) => child.once('close', resolve))
    expect(status).toBe(0)
    expect(out).toMatch(/^HTTP\/1.1 200 OK\r\n/)
    expect(out).toContain('[{"name":"shop","disk_bytes":3}]')
  })

  it('says the agent is not running when dial-stdio finds no socket', async () => {
    const home = join(await tempApp({}), 'no-agent')
    const child = spawn(process.execPath, [join(projectRoot, 'dist/agent.cjs'), 'dial-stdio'], {env: {...process.env, DEV_AGENT_HOME: home}})
    let err = ''
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()))
    child.stdin.end()
    expect(await new Promise((resolve) => child.once('close', resolve))).toBe(1)
    expect(err).toMatch(/^dev-agent: cannot reach .*agent.sock: the agent is not running; start it with/)
  })

  it('creates apps, records config changes as releases, and keeps config 0600 and the socket 0660', async () => {
    const {home, call} = await startAgent()
    expect(await call('POST', '/apps', {name: 'shop'})).toEqual({status: 201, json: {name: 'shop'}})
    expect(await call('GET', '/apps')).toEqual({status: 200, json: [{name: 'shop', disk_bytes: 3}]})
    expect(await call('PATCH', '/apps/shop/config-vars', {DATABASE_URL: 'postgres://db', MODE: 'prod'})).toEqual({
      status: 200,
      json: {DATABASE_URL: 'postgres://db', MODE: 'prod'},
    })
    expect((await call('PATCH', '/apps/shop/config-vars', {MODE: null})).json).toEqual({DATABASE_URL: 'postgres://db'})
    const releases = (await call('GET', '/apps/shop/releases')).json
    expect(releases.map((release: {v: number; description: string; user: string}) => [release.v, release.description, release.user])).toEqual([
      [1, 'Set DATABASE_URL, MODE config vars', 'ann'],
      [2, 'Unset MODE config vars', 'ann'],
    ])
    expect((await stat(join(home, 'apps', 'shop', 'config.json'))).mode & 0o777).toBe(0o600)
    expect((await stat(join(home, 'apps', 'shop', 'releases.jsonl'))).mode & 0o777).toBe(0o600)
    expect((await stat(join(home, 'agent.sock'))).mode & 0o777).toBe(0o660)
  })

  it('stores slugs by sha256, verifying uploads', async () => {
    const {home, call} = await startAgent()
    const {sha256, bytes} = await agentAppSlug()
    expect((await call('HEAD', `/slugs/${sha256}`)).status).toBe(404)
    expect(await call('PUT', `/slugs/${sha256}`, bytes)).toEqual({status: 201, json: {sha256}})
    expect((await call('HEAD', `/slugs/${sha256}`)).status).toBe(200)
    expect((await call('PUT', `/slugs/${sha256}`, bytes)).status).toBe(200)
    const wrong = 'f'.repeat(64)
    expect(await call('PUT', `/slugs/${wrong}`, bytes)).toMatchObject({status: 422, json: {message: expect.stringMatching(/^the upload's sha256 is [0-9a-f]{64}, not f+: it was damaged/)}})
    expect(await readdir(join(home, 'slugs'))).toEqual([`${sha256}.tgz`])
    expect((await call('PUT', '/slugs/not-a-sha', bytes)).status).toBe(400)
  })

  it('deploys a slug as a release, extracted to releases/vN, and rolls back with a new release', async () => {
    const {home, call} = await startAgent()
    const {sha256, bytes} = await agentAppSlug()
    await call('POST', '/apps', {name: 'shop'})
    await call('PATCH', '/apps/shop/config-vars', {A: '1'})
    expect(await call('POST', '/apps/shop/releases', {slug: 'e'.repeat(64)})).toMatchObject({status: 404, json: {message: expect.stringMatching(/upload it first/)}})
    await call('PUT', `/slugs/${sha256}`, bytes)
    const v2 = await call('POST', '/apps/shop/releases', {slug: sha256})
    expect(v2).toMatchObject({status: 201, json: {v: 2, slug: sha256, config: {A: '1'}, description: `Deploy ${sha256.slice(0, 7)}`}})
    expect(await readFile(join(home, 'apps/shop/releases/v2/Procfile'), 'utf8')).toContain('web:')
    await call('PATCH', '/apps/shop/config-vars', {A: '2'})
    const v4 = await call('POST', '/apps/shop/releases', {rollback: 2})
    expect(v4).toMatchObject({status: 201, json: {v: 4, slug: sha256, config: {A: '1'}, description: 'Rollback to v2'}})
    expect((await call('GET', '/apps/shop/config-vars')).json).toEqual({A: '1'})
    expect(await call('POST', '/apps/shop/releases', {rollback: 1})).toMatchObject({status: 422, json: {message: 'v1 has no slug to roll back to'}})
    expect((await call('POST', '/apps/shop/releases', {rollback: 9})).status).toBe(404)
  })

  it('shows one release, named v2 or 2', async () => {
    const {call} = await startAgent()
    await call('POST', '/apps', {name: 'shop'})
    await call('PATCH', '/apps/shop/config-vars', {A: '1'})
    await call('PATCH', '/apps/shop/config-vars', {A: '2'})
    const [, v2] = (await call('GET', '/apps/shop/releases')).json
    expect(v2).toMatchObject({v: 2, config: {A: '2'}, description: 'Set A config vars', user: 'ann'})
    expect(await call('GET', '/apps/shop/releases/v2')).toEqual({status: 200, json: v2})
    expect(await call('GET', '/apps/shop/releases/2')).toEqual({status: 200, json: v2})
    expect(await call('GET', '/apps/shop/releases/v3')).toEqual({status: 404, json: {id: 'not_found', message: 'app shop has no release v3'}})
    expect(await call('GET', '/apps/shop/releases/latest')).toEqual({status: 404, json: {id: 'not_found', message: 'app shop has no release latest; name one as v2 or 2'}})
    expect(await call('GET', '/apps/nope/releases/v1')).toEqual({status: 404, json: {id: 'not_found', message: 'no app named nope'}})
  })

  it('keeps the extracted slugs of the last five releases after each deploy', async () => {
    const {home, call} = await startAgent()
    const {sha256, bytes} = await agentAppSlug()
    await call('POST', '/apps', {name: 'shop'})
    await call('PUT', `/slugs/${sha256}`, bytes)
    for (let i = 0; i < 7; i++) expect((await call('POST', '/apps/shop/releases', {slug: sha256})).status).toBe(201)
    expect((await readdir(join(home, 'apps/shop/releases'))).sort()).toEqual(['v3', 'v4', 'v5', 'v6', 'v7'])
    expect(await readdir(join(home, 'slugs'))).toEqual([`${sha256}.tgz`])
  })

  it('refuses a hostile slug at deploy, recording no release and leaving nothing behind', async () => {
    const {home, call} = await startAgent()
    await call('POST', '/apps', {name: 'shop'})
    const hostile = hostileSlug()
    const sha256 = createHash('sha256').update(hostile).digest('hex')
    expect((await call('PUT', `/slugs/${sha256}`, hostile)).status).toBe(201)
    expect(await call('POST', '/apps/shop/releases', {slug: sha256})).toMatchObject({status: 422, json: {message: expect.stringMatching(/^refused to extract/)}})
    expect((await call('GET', '/apps/shop/releases')).json).toEqual([])
    expect(await readdir(join(home, 'apps/shop/releases')).catch(() => [])).toEqual([])
    await expect(stat(join(home, 'apps/shop/escaped.txt'))).rejects.toThrow()
  })

  it('holds a deploy lock for as long as the connection that took it stays open', async () => {
    const {home, call} = await startAgent()
    await call('POST', '/apps', {name: 'shop'})
    // Take the lock on a connection of its own and keep it open.
    const lockRequest = request({socketPath: join(home, 'agent.sock'), method: 'POST', path: '/apps/shop/lock', headers: {'dev-user': 'bob'}})
    lockRequest.end()
    const holder = await new Promise<{token: string; user: string; since: string}>((resolve) => {
      lockRequest.once('response', (res) => res.once('data', (chunk: Buffer) => resolve(JSON.parse(chunk.toString()))))
    })
    expect(holder).toMatchObject({user: 'bob', token: expect.stringMatching(/^[0-9a-f]{32}$/)})
    const blocked = await call('PATCH', '/apps/shop/config-vars', {A: '1'})
    expect(blocked).toEqual({status: 409, json: {id: 'conflict', message: `app shop is being deployed by bob since ${holder.since}; wait, or retry when that deploy ends`}})
    expect((await call('POST', '/apps/shop/lock')).status).toBe(409)
    // Scaling and restarts wait for the deploy too.
    expect((await call('PATCH', '/apps/shop/formation', {updates: [{type: 'web', quantity: 2}]})).status).toBe(409)
    expect((await call('DELETE', '/apps/shop/dynos')).status).toBe(409)
    expect((await call('PATCH', '/apps/shop/config-vars', {A: '1'}, {'dev-lock': holder.token})).status).toBe(200)
    // The holder goes away (a killed client): the lock goes with it.
    lockRequest.destroy()
    let status = 0
    for (let tries = 0; tries < 50 && status !== 200; tries++) {
      status = (await call('PATCH', '/apps/shop/config-vars', {B: '2'})).status
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 20))
    }
    expect(status).toBe(200)
  })

  it('answers bad requests with a 4xx that says what was wrong, and changes nothing', async () => {
    const {call} = await startAgent()
    expect(await call('POST', '/apps', 'not json')).toEqual({status: 400, json: {id: 'bad_request', message: 'request body is not JSON'}})
    expect(await call('POST', '/apps', {title: 'x'})).toMatchObject({status: 422, json: {message: expect.stringMatching(/^invalid request body/)}})
    expect(await call('POST', '/apps', {name: 'Bad Name'})).toMatchObject({status: 422, json: {message: expect.stringMatching(/^invalid app name "Bad Name"/)}})
    await call('POST', '/apps', {name: 'shop'})
    expect((await call('POST', '/apps', {name: 'shop'})).status).toBe(409)
    expect(await call('PATCH', '/apps/shop/config-vars', {'1BAD': 'x', GOOD: 'y'})).toMatchObject({status: 422})
    expect(await call('PATCH', '/apps/shop/config-vars', {A: 5})).toMatchObject({status: 422, json: {message: expect.stringMatching(/^invalid request body at A/)}})
    expect((await call('GET', '/apps/shop/config-vars')).json).toEqual({})
    expect((await call('GET', '/apps/shop/releases')).json).toEqual([])
    expect(await call('GET', '/apps/nope/releases')).toEqual({status: 404, json: {id: 'not_found', message: 'no app named nope'}})
    expect(await call('DELETE', '/apps')).toMatchObject({status: 405, json: {id: 'method_not_allowed'}})
    expect(await call('POST', '/apps/shop/releases', {})).toMatchObject({
      status: 422,
      json: {id: 'invalid_params', message: 'invalid request body: give {"slug": SHA256} to deploy a slug, or {"rollback": N} to roll back to vN'},
    })
    expect(await call('PATCH', '/apps/shop/formation', {updates: [{type: 'web', quantity: 1}]})).toMatchObject({status: 422, json: {message: 'app shop runs no slug yet; deploy one before scaling'}})
    expect(await call('GET', '/nowhere')).toMatchObject({status: 404})
  })
})
