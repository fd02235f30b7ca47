import {createHash} from 'node:crypto'
import {readdir, readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {openHost} from '../../src/remote/open-host.js'
import {RemoteAgent} from '../../src/remote/remote-agent.js'
import {agentAppSlug, hostileSlug} from '../support/agent.js'
import {deployedApp} from '../support/deployed-app.js'
import {get} from '../support/http-load.js'

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

describe('reliability: bad slugs sent to a host over SSH (real sshd host and agent)', () => {
  it('a wrong sha256, a truncated slug and a slug with ../ paths are refused; nothing is written or released', async () => {
    const {hosts, env} = await deployedApp(1)
    const host = hosts[0]!
    const ledger = await readFile(join(host.agentHome, 'apps/shop/releases.jsonl'), 'utf8')
    const slugsBefore = (await readdir(join(host.agentHome, 'slugs'))).sort()
    const good = await agentAppSlug()
    const ssh = await openHost('vps1', {env})
    const agent = new RemoteAgent(ssh)
    try {
      // Bytes that are not what their name says.
      const wrong = await agent.call('PUT', `/slugs/${sha256(Buffer.from('something else'))}`, good.bytes)
      expect(wrong.status).toBe(422)
      expect(wrong.json.message).toMatch(/sha256/)
      // The first half of a real slug, sent under the whole slug's name.
      const half = good.bytes.subarray(0, good.bytes.length >> 1)
      expect((await agent.call('PUT', `/slugs/${good.sha256}`, half)).status).toBe(422)
      expect((await readdir(join(host.agentHome, 'slugs'))).sort()).toEqual(slugsBefore)

      // Well named, but no slug: a truncated archive, and one that climbs out with ../
      for (const bytes of [half, hostileSlug()]) {
        expect((await agent.call('PUT', `/slugs/${sha256(bytes)}`, bytes)).status).toBe(201)
        const release = await agent.call('POST', '/apps/shop/releases', {slug: sha256(bytes)})
        console.log('release of a bad slug:', release.status, release.json.message)
        expect(release.status).toBe(422)
        expect(release.json.message).toMatch(/slug/)
      }
    } finally {
      agent.close()
    }
    expect(await readFile(join(host.agentHome, 'apps/shop/releases.jsonl'), 'utf8')).toBe(ledger)
    expect(await readdir(join(host.agentHome, 'apps/shop/releases'))).toEqual(['v1'])
    expect(await readdir(join(host.agentHome, '..')).then((names) => names.includes('escaped.txt'))).toBe(false)
    expect((await get(host.routerPort)).body).toMatch(/^hello from web\.1 of v1 /)
  }, 60_000)
})
