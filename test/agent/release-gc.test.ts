import {mkdir, readdir, rm, utimes, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {collectReleaseDirs, collectSlugs, releasesToKeep, UPLOAD_GRACE_MS} from '../../src/agent/release-gc.js'
import type {Release} from '../../src/agent/release-ledger.js'
import {agentAppSlug, startAgent} from '../support/agent.js'
import {tempApp} from '../support/temp-app.js'

const sha = (n: number) => String(n).repeat(64).slice(0, 64)
const release = (v: number, slug: string | null = sha(v % 10)): Release => ({v, slug, config: {}, description: '', user: 'u', created_at: ''})

describe('release GC', () => {
  it('keeps the last five releases, and never fewer than the current and the previous one', () => {
    const releases = Array.from({length: 8}, (_, i) => release(i + 1))
    expect(releasesToKeep(releases).map((r) => r.v)).toEqual([4, 5, 6, 7, 8])
    expect(releasesToKeep(releases, 1).map((r) => r.v)).toEqual([7, 8])
    expect(releasesToKeep(releases.slice(0, 1)).map((r) => r.v)).toEqual([1])
  })

  it('removes the extracted slugs of older releases only', async () => {
    const dir = await tempApp({})
    for (let v = 1; v <= 7; v++) await mkdir(join(dir, `v${v}`))
    await mkdir(join(dir, '.incoming-1'))
    const removed = await collectReleaseDirs(dir, releasesToKeep(Array.from({length: 7}, (_, i) => release(i + 1))))
    expect(removed.sort()).toEqual(['v1', 'v2'])
    expect((await readdir(dir)).sort()).toEqual(['.incoming-1', 'v3', 'v4', 'v5', 'v6', 'v7'])
  })

  it('removes slugs no app keeps, but not one uploaded within the grace period', async () => {
    const dir = await tempApp({})
    const now = Date.now()
    for (const n of [1, 2, 3]) {
      await writeFile(join(dir, `${sha(n)}.tgz`), 'x')
      await utimes(join(dir, `${sha(n)}.tgz`), new Date(now - 2 * UPLOAD_GRACE_MS), new Date(now - 2 * UPLOAD_GRACE_MS))
    }
    await writeFile(join(dir, `${sha(4)}.tgz`), 'fresh upload')
    const removed = await collectSlugs(dir, new Set([sha(1)]), now)
    expect(removed.sort()).toEqual([sha(2), sha(3)])
    expect((await readdir(dir)).sort()).toEqual([`${sha(1)}.tgz`, `${sha(4)}.tgz`])
  })
})

describe('rolling back to a release whose slug was collected', () => {
  it('is refused saying the slug is no longer on the host, not that it is damaged', async () => {
    const agent = await startAgent()
    const slug = await agentAppSlug()
    expect((await agent.call('POST', '/apps', {name: 'shop'})).status).toBe(201)
    expect((await agent.call('PUT', `/slugs/${slug.sha256}`, slug.bytes)).status).toBe(201)
    expect((await agent.call('POST', '/apps/shop/releases', {slug: slug.sha256})).status).toBe(201)
    expect((await agent.call('PATCH', '/apps/shop/config-vars', {GREETING: 'hi'})).status).toBe(200)
    await rm(join(agent.home, 'slugs', `${slug.sha256}.tgz`))
    const answer = await agent.call('POST', '/apps/shop/releases', {rollback: 1})
    expect(answer).toMatchObject({status: 422, json: {message: `the slug of v1 (${slug.sha256.slice(0, 12)}) is no longer on this host (only the last releases' slugs are kept); roll back to a later release, or deploy that code again`}})
    expect((await agent.call('GET', '/apps/shop/releases')).json).toHaveLength(2)
  })
})
