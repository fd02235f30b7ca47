import {spawn, type ChildProcess} from 'node:child_process'
import {stat} from 'node:fs/promises'
import {request} from 'node:http'
import {join} from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {projectRoot} from '../support/run-bin.js'
import {tempApp} from '../support/temp-app.js'

const running: ChildProcess[] = []
afterEach(() => {
  for (const child of running.splice(0)) child.kill('SIGTERM')
})

/** Starts the bundled agent (dist/agent.cjs) as a real daemon on a fresh DEV_AGENT_HOME. */
async function startAgent(): Promise<{home: string; call: (method: string, path: string, body?: unknown) => Promise<{status: number; json: any}>}> {
  const home = join(await tempApp({}), 'agent-home')
  const child = spawn(process.execPath, [join(projectRoot, 'dist/agent.cjs'), 'daemon'], {env: {...process.env, DEV_AGENT_HOME: home}, stdio: ['ignore', 'ignore', 'pipe']})
  running.push(child)
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => chunk.toString().includes('listening') && resolve())
    child.once('exit', (code) => reject(new Error(`agent exited ${code}`)))
  })
  const call = (method: string, path: string, body?: unknown) =>
    new Promise<{status: number; json: any}>((resolve, reject) => {
      const req = request({socketPath: join(home, 'agent.sock'), method, path, headers: {'content-type': 'application/json', 'dev-user': 'ann'}}, (res) => {
        let text = ''
        res.on('data', (chunk: Buffer) => (text += chunk.toString()))
        res.on('end', () => resolve({status: res.statusCode!, json: JSON.parse(text)}))
      })
      req.on('error', reject)
      req.end(body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body))
    })
  return {home, call}
}

describe('the agent API (bundled agent, real socket)', () => {
  it('prints its version', async () => {
    const child = spawn(process.execPath, [join(projectRoot, 'dist/agent.cjs'), 'version'])
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    await new Promise((resolve) => child.once('close', resolve))
    expect(out).toMatch(/^dev-agent \d+\.\d+\.\d+ node-v\d+/)
  })

  it('creates apps, records config changes as releases, and keeps config 0600 and the socket 0660', async () => {
    const {home, call} = await startAgent()
    expect(await call('POST', '/apps', {name: 'shop'})).toEqual({status: 201, json: {name: 'shop'}})
    expect(await call('GET', '/apps')).toEqual({status: 200, json: [{name: 'shop'}]})
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
    expect(await call('GET', '/apps/nope/releases')).toEqual({status: 404, json: {id: 'bad_request', message: 'no app named nope'}})
    expect(await call('DELETE', '/apps')).toMatchObject({status: 405})
    expect(await call('GET', '/nowhere')).toMatchObject({status: 404})
  })
})
