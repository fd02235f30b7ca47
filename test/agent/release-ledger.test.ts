import {appendFile, readFile, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {ReleaseLedger} from '../../src/agent/release-ledger.js'
import {tempApp} from '../support/temp-app.js'

const SLUG_A = 'a'.repeat(64)
const SLUG_B = 'b'.repeat(64)

async function ledger() {
  const dir = await tempApp({})
  const path = join(dir, 'releases.jsonl')
  return {path, ledger: new ReleaseLedger(path)}
}

describe('ReleaseLedger', () => {
  it('numbers releases v1, v2 … and keeps each one as appended', async () => {
    const {ledger: releases} = await ledger()
    expect(await releases.current()).toBeUndefined()
    const v1 = await releases.append({slug: SLUG_A, config: {A: '1'}, description: `Deploy ${SLUG_A.slice(0, 7)}`, user: 'ann'}, new Date('2026-11-22T10:00:00Z'))
    const v2 = await releases.append({slug: SLUG_A, config: {A: '1', B: '2'}, description: 'Set B config vars', user: 'ann'})
    expect(v1).toEqual({v: 1, slug: SLUG_A, config: {A: '1'}, description: 'Deploy aaaaaaa', user: 'ann', created_at: '2026-11-22T10:00:00.000Z'})
    expect(v2.v).toBe(2)
    expect((await releases.list()).map((release) => release.v)).toEqual([1, 2])
    expect(await releases.current()).toEqual(v2)
  })

  it('rolls back by appending a release with the slug and config of vK', async () => {
    const {ledger: releases} = await ledger()
    await releases.append({slug: SLUG_A, config: {A: '1'}, description: 'Deploy a', user: 'ann'})
    await releases.append({slug: SLUG_B, config: {A: '2'}, description: 'Deploy b', user: 'bob'})
    const v3 = await releases.rollback(1, 'cat')
    expect(v3).toMatchObject({v: 3, slug: SLUG_A, config: {A: '1'}, description: 'Rollback to v1', user: 'cat'})
    expect((await releases.list()).map((release) => release.slug)).toEqual([SLUG_A, SLUG_B, SLUG_A])
    await expect(releases.rollback(9, 'cat')).rejects.toThrow('there is no release v9 to roll back to')
  })

  it('keeps the file readable by its owner only (it holds config vars)', async () => {
    const {path, ledger: releases} = await ledger()
    await releases.append({slug: null, config: {SECRET: 'x'}, description: 'Set SECRET config vars', user: 'ann'})
    expect((await stat(path)).mode & 0o777).toBe(0o600)
  })

  it('numbers concurrent appends without gaps or repeats', async () => {
    const {ledger: releases} = await ledger()
    await Promise.all(Array.from({length: 20}, (_, i) => releases.append({slug: null, config: {}, description: `r${i}`, user: 'ann'})))
    expect((await releases.list()).map((release) => release.v)).toEqual(Array.from({length: 20}, (_, i) => i + 1))
  })

  it('ignores a line cut short by a crash, and cuts it off before the next append', async () => {
    const {path, ledger: releases} = await ledger()
    await releases.append({slug: SLUG_A, config: {}, description: 'Deploy a', user: 'ann'})
    await appendFile(path, '{"v":2,"slug":"bbbb')
    expect((await releases.list()).map((release) => release.v)).toEqual([1])
    const v2 = await releases.append({slug: SLUG_B, config: {}, description: 'Deploy b', user: 'ann'})
    expect(v2.v).toBe(2)
    const lines = (await readFile(path, 'utf8')).trim().split('\n')
    expect(lines).toHaveLength(2)
    expect(JSON.parse(lines[1]!)).toMatchObject({v: 2, slug: SLUG_B})
  })

  it('refuses a damaged ledger, naming the line', async () => {
    const {path, ledger: releases} = await ledger()
    await releases.append({slug: SLUG_A, config: {}, description: 'Deploy a', user: 'ann'})
    await appendFile(path, 'not json\n')
    await expect(releases.list()).rejects.toThrow(`${path}:2: not a valid release; the ledger is damaged, restore it from a backup`)
    await writeFile(path, `${JSON.stringify({v: 2, slug: null, config: {}, description: 'x', user: 'u', created_at: 't'})}\n`)
    await expect(releases.list()).rejects.toThrow(`${path}:1: release v2 where v1 was expected; the ledger is damaged`)
  })
})
