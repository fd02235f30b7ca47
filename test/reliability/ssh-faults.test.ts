import {execFileSync} from 'node:child_process'
import {mkdir, readdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {randomBytes} from 'node:crypto'

import {describe, expect, it} from 'vitest'

import {eventually} from '../support/agent.js'
import {deployedApp} from '../support/deployed-app.js'
import {devAsync} from '../support/dev-async.js'
import {get, startLoad} from '../support/http-load.js'
import {spawnBin} from '../support/spawn-bin.js'
import type {TestHost} from '../support/ssh-hosts.js'

/** Cuts every SSH connection to the host: SIGKILL to the sshd processes serving them (the listener stays). */
function cutConnections(host: TestHost): number {
  const children = execFileSync('ps', ['-o', 'pid=', '--ppid', String(host.sshd.pid)], {encoding: 'utf8'}).split('\n').map(Number).filter((pid) => pid > 0)
  for (const pid of children) process.kill(pid, 'SIGKILL')
  return children.length
}

/** What a failed deploy must leave: the same ledger, v1 serving, no partial upload, the lock free. */
async function expectUntouched(host: TestHost, ledger: string) {
  expect(await readFile(join(host.agentHome, 'apps/shop/releases.jsonl'), 'utf8')).toBe(ledger)
  expect((await get(host.routerPort)).body).toMatch(/^hello from web\.1 of v1 /)
  const leftovers = (await readdir(join(host.agentHome, 'sources')).catch(() => [] as string[])).filter((name) => name.includes('.upload-'))
  expect(leftovers).toEqual([])
}

describe('reliability: SSH connections cut during a deploy (real sshd host)', () => {
  it('cut mid-upload: the deploy fails, v1 keeps serving, nothing partial stays, and the next deploy goes through', async () => {
    const {hosts, env, root} = await deployedApp(1)
    const host = hosts[0]!
    const ledger = await readFile(join(host.agentHome, 'apps/shop/releases.jsonl'), 'utf8')
    // A source that takes a while to upload: 64 MB that gzip cannot shrink.
    await writeFile(join(root, 'blob.bin'), randomBytes(64 * 1024 * 1024))
    const load = startLoad([host.routerPort])
    const deploy = spawnBin(['deploy'], {cwd: root, env})
    // The upload is under way once its partial file exists on the host.
    await eventually(async () => (await readdir(join(host.agentHome, 'sources')).catch(() => [] as string[])).some((name) => name.includes('.upload-')), (found) => found, 30_000)
    expect(cutConnections(host)).toBeGreaterThan(0)
    const status = await deploy.status
    const counts = await load.stop()
    console.log('SSH cut mid-upload:', {status, stderr: deploy.stderr().trim().split('\n').at(-1), ...counts})
    expect(status).toBe(1)
    expect(deploy.stderr()).toMatch(/error: vps1: the connection broke off during the source upload \(.+\); nothing was released there: run dev deploy again\n$/)
    expect(counts).toMatchObject({errors: 0, other: []})
    await eventually(async () => (await readdir(join(host.agentHome, 'sources'))).filter((name) => name.includes('.upload-')).length, (count) => count === 0)
    await expectUntouched(host, ledger)
    const next = await devAsync(['deploy'], {cwd: root, env})
    expect(next.status, next.stderr).toBe(0)
    expect((await get(host.routerPort)).body).toMatch(/^hello from web\.1 of v2 /)
  }, 120_000)

  it('cut mid-build: the deploy fails, v1 keeps serving, no release is made, and the next deploy goes through', async () => {
    const {hosts, env, root} = await deployedApp(1)
    const host = hosts[0]!
    const ledger = await readFile(join(host.agentHome, 'apps/shop/releases.jsonl'), 'utf8')
    // A buildpack that takes its time, so the connection can be cut while it runs.
    await mkdir(join(root, 'slowpack/bin'), {recursive: true})
    await writeFile(join(root, 'slowpack/bin/detect'), '#!/bin/sh\necho slow\n', {mode: 0o755})
    await writeFile(join(root, 'slowpack/bin/compile'), '#!/bin/sh\necho "-----> compiling slowly"\n[ -f "$1/fast" ] || sleep 20\necho "-----> compiled"\n', {mode: 0o755})
    const appJson = JSON.parse(await readFile(join(root, 'app.json'), 'utf8'))
    await writeFile(join(root, 'app.json'), JSON.stringify({...appJson, buildpacks: ['./slowpack']}))
    const deploy = spawnBin(['deploy'], {cwd: root, env})
    await eventually(async () => deploy.stderr(), (stderr) => stderr.includes('compiling slowly'), 30_000)
    expect(cutConnections(host)).toBeGreaterThan(0)
    const status = await deploy.status
    console.log('SSH cut mid-build:', {status, stderr: deploy.stderr().trim().split('\n').at(-1)})
    expect(status).toBe(1)
    expect(deploy.stderr()).toMatch(/error: vps1: the connection broke off during the build \(.+\); nothing was released there: run dev deploy again\n$/)
    await expectUntouched(host, ledger)
    // The next deploy builds again (quickly now) and releases.
    await writeFile(join(root, 'fast'), 'yes\n')
    const next = await devAsync(['deploy'], {cwd: root, env})
    expect(next.status, next.stderr).toBe(0)
    expect((await get(host.routerPort)).body).toMatch(/^hello from web\.1 of v2 /)
  }, 120_000)
})
