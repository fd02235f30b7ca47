import {createHash, randomBytes} from 'node:crypto'
import {readdir, readlink, stat, utimes} from 'node:fs/promises'
import {request} from 'node:http'
import {connect} from 'node:net'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {eventually, startAgent} from '../support/agent.js'

/** Sends `head` as is on a connection of its own and returns all that comes back. */
async function raw(home: string, head: string): Promise<string> {
  const socket = connect(join(home, 'agent.sock'))
  let text = ''
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()))
  socket.write(head)
  await new Promise((resolve) => socket.once('close', resolve))
  return text
}

/** Asks for the app's deploy lock; the connection is closed once the status is known. */
function takeLock(home: string, app: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({socketPath: join(home, 'agent.sock'), method: 'POST', path: `/apps/${app}/lock`, headers: {'dev-user': 'bob'}}, (res) => {
      resolve(res.statusCode!)
      req.destroy()
    })
    req.on('error', reject)
    req.end()
  })
}

/** The files the process has open (Linux). */
async function openFiles(pid: number): Promise<string[]> {
  const fds = await readdir(`/proc/${pid}/fd`)
  return Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')))
}

/** A blob of `bytes` random bytes, stored as a slug under its sha256 (the store checks only that). */
async function storedBlob(call: Awaited<ReturnType<typeof startAgent>>['call'], bytes: number) {
  const body = randomBytes(bytes)
  const sha256 = createHash('sha256').update(body).digest('hex')
  expect((await call('PUT', `/slugs/${sha256}`, body)).status).toBe(201)
  return {sha256, body}
}

describe('the agent API under hostile or unlucky clients (bundled agent, real socket)', () => {
  it('answers a malformed URL with a 400, on plain routes and on the upgrade of an attached run', async () => {
    const {home, call} = await startAgent()
    await call('POST', '/apps', {name: 'shop'})
    expect(await call('GET', '/apps/%E0/releases')).toEqual({status: 400, json: {id: 'bad_request', message: 'malformed percent-encoding in the path: %E0'}})
    expect(await raw(home, 'GET http://[ HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1.1 400 [^]*"message":"malformed request URL: http:\/\/\["/)
    const upgrade = (target: string) => raw(home, `POST ${target} HTTP/1.1\r\nHost: agent\r\nConnection: Upgrade\r\nUpgrade: dev-run\r\n\r\n`)
    expect(await upgrade('/apps/%E0/dynos')).toMatch(/^HTTP\/1.1 400 Bad Request\r\n[^]*\{"id":"bad_request","message":"malformed percent-encoding in the path: %E0"\}/)
    expect(await upgrade('http://[')).toMatch(/^HTTP\/1.1 400 Bad Request\r\n[^]*"message":"malformed request URL: http:\/\/\["/)
    expect(await upgrade('//[')).toMatch(/^HTTP\/1.1 400 /)
    // The agent is still there.
    expect((await call('GET', '/apps/shop/releases')).status).toBe(200)
  })

  it('closes the file of a slug download the client abandons, and keeps serving', async () => {
    const {home, call, child} = await startAgent()
    const {sha256} = await storedBlob(call, 16 * 1024 * 1024)
    const slugFile = join(home, 'slugs', `${sha256}.tgz`)
    // Read the start of the download, then hang up with most of it unsent.
    await new Promise<void>((resolve, reject) => {
      const req = request({socketPath: join(home, 'agent.sock'), path: `/slugs/${sha256}`}, (res) => {
        expect(res.statusCode).toBe(200)
        res.once('data', () => {
          req.destroy()
          resolve()
        })
      })
      req.on('error', () => {})
      req.once('error', reject)
      req.end()
    })
    expect(await eventually(() => openFiles(child.pid!), (files) => !files.includes(slugFile))).not.toContain(slugFile)
    expect((await call('GET', `/slugs/${sha256}`)).status).toBe(200)
    expect((await call('GET', '/apps')).status).toBe(200)
  })

  it('never leaves a stale deploy lock behind a client that takes it and goes at once', async () => {
    const {home, call} = await startAgent()
    await call('POST', '/apps', {name: 'shop'})
    for (let attempt = 0; attempt < 20; attempt++) {
      const socket = connect(join(home, 'agent.sock'))
      socket.on('error', () => {})
      await new Promise((resolve) => socket.once('connect', resolve))
      // Gone as soon as the request is sent: the agent is still looking the app up.
      socket.write('POST /apps/shop/lock HTTP/1.1\r\nHost: agent\r\nDev-User: eve\r\nContent-Length: 0\r\n\r\n', () => socket.destroy())
      await new Promise((resolve) => socket.once('close', resolve))
      // A second client gets the lock, once the agent has seen the first one go.
      expect(await eventually(() => takeLock(home, 'shop'), (status) => status === 200)).toBe(200)
    }
  })

  it('refuses a slug id that is not a sha256 on every slug route', async () => {
    const {call} = await startAgent()
    const message = (id: string) => `invalid slug id "${id}": a slug is named by its sha256 (64 hex digits)`
    for (const method of ['GET', 'PUT']) {
      expect(await call(method, '/slugs/..%2Fagent.json', method === 'PUT' ? 'x' : undefined)).toEqual({status: 400, json: {id: 'bad_request', message: message('../agent.json')}})
    }
    expect((await call('HEAD', '/slugs/..%2Fagent.json')).status).toBe(400)
    expect((await call('HEAD', `/slugs/${'A'.repeat(64)}`)).status).toBe(400)
  })

  it('counts a HEAD of a slug as a use of it, so garbage collection spares it a while longer', async () => {
    const {home, call} = await startAgent()
    const {sha256} = await storedBlob(call, 1024)
    const file = join(home, 'slugs', `${sha256}.tgz`)
    const longAgo = new Date('2001-01-01T00:00:00Z')
    await utimes(file, longAgo, longAgo)
    expect((await call('HEAD', `/slugs/${sha256}`)).status).toBe(200)
    expect((await stat(file)).mtimeMs).toBeGreaterThan(longAgo.getTime())
    expect((await call('HEAD', `/slugs/${'0'.repeat(64)}`)).status).toBe(404)
  })

  it('stores a slug uploaded by several clients at once', async () => {
    const {home, call} = await startAgent()
    const body = randomBytes(2 * 1024 * 1024)
    const sha256 = createHash('sha256').update(body).digest('hex')
    const statuses = await Promise.all(Array.from({length: 12}, async () => (await call('PUT', `/slugs/${sha256}`, body)).status))
    expect(statuses.every((status) => status === 200 || status === 201), String(statuses)).toBe(true)
    expect(statuses.filter((status) => status === 201).length).toBeGreaterThanOrEqual(1)
    expect(await readdir(join(home, 'slugs'))).toEqual([`${sha256}.tgz`])
    expect((await stat(join(home, 'slugs', `${sha256}.tgz`))).size).toBe(body.length)
  })
})
