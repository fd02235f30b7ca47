import {randomBytes} from 'node:crypto'
import {readdir, readFile, writeFile} from 'node:fs/promises'
import {Agent, request} from 'node:http'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {openHost} from '../../src/remote/open-host.js'
import {RemoteAgent} from '../../src/remote/remote-agent.js'
import {eventually} from '../support/agent.js'
import {runBin} from '../support/run-bin.js'
import {spawnBin} from '../support/spawn-bin.js'
import type {TestHost} from '../support/ssh-hosts.js'
import {hostsAndApp} from '../support/deployed-app.js'

/** GET / from a host's router. */
function viaRouter(port: number, agent: Agent | false = false): Promise<{status: number; body: string}> {
  return new Promise((resolve, reject) => {
    request({host: '127.0.0.1', port, headers: {host: 'shop.example.com'}, agent}, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => (body += chunk.toString()))
      res.on('end', () => resolve({status: res.statusCode!, body}))
    })
      .on('error', reject)
      .end()
  })
}

const servedBy = async (hosts: readonly TestHost[]) => Promise.all(hosts.map(async (host) => (await viaRouter(host.routerPort)).body.replace(/ at .*\n$/, '')))

describe('dev deploy (the real dev, real sshd, real agents and routers)', () => {
  it('builds once on the first host, ships the same slug to the second, runs the release phase once, and serves on both', async () => {
    const {hosts, env, root} = await hostsAndApp(2)
    const deployed = runBin(['deploy', '-d', root, '-m', 'first deploy'], {env})
    expect(deployed.status, deployed.stderr).toBe(0)
    expect(deployed.stderr).toMatch(/vps1: uploaded the source: \d+ files, [\d.]+ KB at [\d.]+ [KM]?B\/s\n/)
    expect(deployed.stderr).toMatch(/vps1: built slug [0-9a-f]{12}/)
    expect(deployed.stderr).toMatch(/vps2: copied slug [0-9a-f]{12} from vps1/)
    expect(deployed.stderr).toContain('vps1 | release phase of v1 (greeting hello)')
    expect(deployed.stderr).not.toContain('vps2 | release phase')
    expect(deployed.stdout).toMatch(new RegExp(`^deployed shop: slug [0-9a-f]{12} \\([\\d.]+ KB\\)\\nvps1\\tv1\\tweb\\.1 up\\thttp://127\\.0\\.0\\.1:${hosts[0]!.routerPort}/\\nvps2\\tv1\\tweb\\.1 up\\thttp://127\\.0\\.0\\.1:${hosts[1]!.routerPort}/\\n$`))
    expect(await servedBy(hosts)).toEqual(['hello from web.1 of v1', 'hello from web.1 of v1'])
    const ledgers = await Promise.all(hosts.map(async (host) => (await readFile(join(host.agentHome, 'apps/shop/releases.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line))))
    expect(ledgers.map((ledger) => ledger.map((release: {slug: string; description: string}) => release.description))).toEqual([[expect.stringMatching(/^Deploy [0-9a-f]{7}: first deploy$/)], [expect.stringMatching(/^Deploy [0-9a-f]{7}: first deploy$/)]])
    expect(ledgers[0]![0].slug).toBe(ledgers[1]![0].slug)

    // Domains: the routers send a named Host to the app (and nothing else once another app is there).
    expect(runBin(['domains', 'add', 'Shop.Example.com'], {cwd: root, env})).toMatchObject({status: 0, stdout: 'vps1: added shop.example.com to shop\nvps2: added shop.example.com to shop\n'})
    expect(runBin(['domains'], {cwd: root, env}).stdout).toBe('vps1\tshop.example.com\nvps2\tshop.example.com\n')
    expect(runBin(['domains', 'add', 'not a host'], {cwd: root, env})).toMatchObject({status: 1, stderr: 'error: vps1: "not a host" is not a hostname; give one like www.example.com or *.example.com\n'})
    expect(runBin(['domains', 'remove', 'shop.example.com'], {cwd: root, env})).toMatchObject({status: 0, stdout: 'vps1: removed shop.example.com from shop\nvps2: removed shop.example.com from shop\n'})

    // Nothing changed: nothing uploaded, built or released.
    const again = runBin(['deploy', '-d', root], {env})
    expect(again.status, again.stderr).toBe(0)
    expect(again.stderr).toMatch(/vps1: source [0-9a-f]{12} is there already \(\d+ files\)\n/)
    expect(again.stderr).toMatch(/vps1 \| -----> The same source and config vars as the build of \S+: reusing slug [0-9a-f]{12}\n/)
    expect(again.stderr).toContain('vps1: v1 runs this slug already: nothing to release\n')
    expect(again.stderr).toContain('vps2: v1 runs this slug already: nothing to release\n')
    expect(again.stderr).not.toContain('release phase')
    expect(await readFile(join(hosts[0]!.agentHome, 'apps/shop/releases.jsonl'), 'utf8')).toBe(`${JSON.stringify(ledgers[0]![0])}\n`)

    // A second app with no domain on the same hosts: the host's name leads to neither now, and no URL is claimed for it.
    const blog = runBin(['deploy', '-d', root, '--app', 'blog', '--host', 'vps1'], {env})
    expect(blog.status, blog.stderr).toBe(0)
    expect(blog.stdout).toMatch(/\nvps1\tv1\tweb\.1 up\tno URL yet \(other apps serve this host\): dev domains add NAME\n$/)
    expect(runBin(['router', '--app', 'blog', '--host', 'vps1'], {cwd: root, env}).stdout).toContain('\nDomains:         none (no request reaches it: dev domains add NAME)\n')
  }, 60_000)

  it('redeploys under continuous load with no failed request; a failed health gate or release phase fails the deploy and every host keeps serving', async () => {
    const {hosts, env, root} = await hostsAndApp(2)
    expect(runBin(['deploy', '-d', root], {env}).status).toBe(0)

    let running = true
    const statuses: number[] = []
    const keepAlive = new Agent({keepAlive: true})
    const load = hosts.map(async (host) => {
      while (running) statuses.push((await viaRouter(host.routerPort, keepAlive).catch(() => ({status: 0}))).status)
    })
    await writeFile(join(root, 'server.js'), (await readFile(join(root, 'server.js'), 'utf8')).replace("GREETING = 'hello'", "GREETING = 'hi'"))
    const second = spawnBin(['deploy', '-d', root], {env})
    expect(await second.status, second.stderr()).toBe(0)
    running = false
    await Promise.all(load)
    keepAlive.destroy()
    expect(new Set(statuses)).toEqual(new Set([200]))
    expect(await servedBy(hosts)).toEqual(['hi from web.1 of v2', 'hi from web.1 of v2'])

    // A new web dyno that fails its health check on the second host: the first goes back too.
    const vps2 = await openHost('vps2', {env})
    try {
      expect((await new RemoteAgent(vps2).call('PATCH', '/apps/shop/config-vars', {HEALTH_FAIL_RELEASE: 'v4'})).status).toBe(200)
    } finally {
      vps2.close()
    }
    await writeFile(join(root, 'server.js'), (await readFile(join(root, 'server.js'), 'utf8')).replace("GREETING = 'hi'", "GREETING = 'hey'"))
    const unhealthy = runBin(['deploy', '-d', root], {env})
    expect(unhealthy.status).toBe(1)
    expect(unhealthy.stderr).toContain('vps1: v3 is serving')
    expect(unhealthy.stderr).toContain('vps1: rolled back to v2 (as v4)')
    expect(unhealthy.stderr).toMatch(/error: vps2: release failed: web\.1 of v4 failed its health check: GET \/health failed \(attempt 2 of 2: status 500\), so nothing was switched/)
    expect(await servedBy(hosts)).toEqual(['hi from web.1 of v4', 'hi from web.1 of v3'])
    await writeFile(join(root, 'server.js'), (await readFile(join(root, 'server.js'), 'utf8')).replace("GREETING = 'hey'", "GREETING = 'hi'"))

    // A release phase that fails: nothing switches anywhere.
    await writeFile(join(root, 'release.js'), 'console.log("migration failed"); process.exit(1)\n')
    const failing = runBin(['deploy', '-d', root], {env})
    expect(failing.status).toBe(1)
    expect(failing.stderr).toContain('vps1 | migration failed')
    expect(failing.stderr).toContain('error: vps1: release failed: the release phase of v5 (`node release.js`) exited with status 1, so nothing was switched; its last lines: migration failed')
    expect(await servedBy(hosts)).toEqual(['hi from web.1 of v4', 'hi from web.1 of v3'])
  }, 120_000)

  it('says so when a first deploy fails on a later host: the earlier hosts had nothing to go back to', async () => {
    const {env, root} = await hostsAndApp(2)
    const vps2 = await openHost('vps2', {env})
    try {
      const api = new RemoteAgent(vps2)
      expect((await api.call('POST', '/apps', {name: 'shop'})).status).toBe(201)
      expect((await api.call('PATCH', '/apps/shop/config-vars', {HEALTH_FAIL_RELEASE: 'v2'})).status).toBe(200)
    } finally {
      vps2.close()
    }
    const failed = runBin(['deploy', '-d', root], {env})
    expect(failed.status).toBe(1)
    expect(failed.stderr).toContain('warning: vps1 ran no release before this deploy, so there is nothing to roll it back to: it serves v1\n')
    expect(failed.stderr).toMatch(/error: vps2: release failed: web\.1 of v2 failed its health check/)
  }, 60_000)

  it('leaves the previous release serving when the client is killed mid-deploy, and the next deploy goes through', async () => {
    const {hosts, env, root} = await hostsAndApp(1)
    expect(runBin(['deploy', '-d', root], {env}).status).toBe(0)
    // A big file makes the upload last; the client dies while it runs.
    await writeFile(join(root, 'big.bin'), randomBytes(48 * 1024 * 1024))
    // Stopped while the host is receiving the source (its partial upload file is there): by Ctrl-C,
    // then by kill -9.
    const sources = join(hosts[0]!.agentHome, 'sources')
    const uploading = () => eventually(async () => (await readdir(sources).catch(() => [] as string[])).some((name) => name.includes('.upload-')), Boolean, 30_000)
    const interrupted = spawnBin(['deploy', '-d', root], {env})
    await uploading()
    interrupted.child.kill('SIGINT')
    expect(await interrupted.status).toBe(1)
    expect(interrupted.stderr()).toContain('cancelling the deploy…\nerror: deploy cancelled before any host released: every host serves what it served before\n')
    expect(await servedBy(hosts)).toEqual(['hello from web.1 of v1'])
    // The host dropped the cancelled upload.
    await eventually(async () => (await readdir(sources)).some((name) => name.includes('.upload-')), (left) => !left)
    const killed = spawnBin(['deploy', '-d', root], {env})
    await uploading()
    killed.child.kill('SIGKILL')
    await killed.status
    expect(killed.stderr()).not.toContain('uploaded the source')
    expect(await servedBy(hosts)).toEqual(['hello from web.1 of v1'])
    // The lock went with the dead client's connection: the next deploy takes it.
    const next = runBin(['deploy', '-d', root], {env})
    expect(next.status, next.stderr).toBe(0)
    expect(await servedBy(hosts)).toEqual(['hello from web.1 of v2'])
  }, 90_000)
})
