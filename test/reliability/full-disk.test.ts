import {execFileSync} from 'node:child_process'
import {cp, readFile, rm, statfs, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {eventually} from '../support/agent.js'
import {processAlive} from '../support/processes.js'
import {projectRoot, runBin} from '../support/run-bin.js'
import {devAsync} from '../support/dev-async.js'
import {get} from '../support/http-load.js'
import {startSshHosts} from '../support/ssh-hosts.js'
import {tempApp} from '../support/temp-app.js'

/** Stops the agent whose home this is (SIGTERM: it stops its dynos first), and waits until it is gone. */
async function stopAgentIn(home: string): Promise<void> {
  const pid = Number(await readFile(join(home, 'agent.pid'), 'utf8').catch(() => ''))
  if (!(pid > 0)) return
  try {
    process.kill(pid, 'SIGTERM')
  } catch {
    return
  }
  await eventually(async () => processAlive(pid), (alive) => !alive, 15_000)
}

const root = process.getuid?.() === 0
const reason = 'mounting a small tmpfs for the agent home needs root'
if (!root) console.log(`skipped: the full-filesystem case (${reason})`)

describe('reliability: the host agent on a full filesystem (real sshd host, a 48 MB tmpfs)', () => {
  it.skipIf(!root)('a deploy fails clearly, the previous release keeps serving, nothing is corrupt, and freeing space is enough', async () => {
    const {hosts, env} = await startSshHosts(1)
    const host = hosts[0]!
    // The agent home on its own small filesystem (agent.json carried over onto it).
    const settings = await readFile(join(host.agentHome, 'agent.json'))
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48m,mode=0700', 'tmpfs', host.agentHome])
    try {
      await writeFile(join(host.agentHome, 'agent.json'), settings)
      expect(runBin(['hosts', 'setup', 'vps1', '--router-port', String(host.routerPort)], {env}).status).toBe(0)
      const app = await tempApp({})
      await cp(join(projectRoot, 'fixtures/agent-app'), app, {recursive: true})
      await writeFile(join(app, 'dev.json'), JSON.stringify({app: 'shop', hosts: ['vps1']}))
      expect((await devAsync(['deploy'], {cwd: app, env})).status).toBe(0)
      const ledger = await readFile(join(host.agentHome, 'apps/shop/releases.jsonl'), 'utf8')

      // Fill what is left, but for a few KiB.
      const free = await statfs(host.agentHome)
      await writeFile(join(host.agentHome, 'filler'), Buffer.alloc(Math.max(0, free.bavail * free.bsize - 16 * 1024)))
      await writeFile(join(app, 'server.js'), (await readFile(join(app, 'server.js'), 'utf8')).replace("GREETING = 'hello'", "GREETING = 'hi'"))
      const failed = await devAsync(['deploy'], {cwd: app, env})
      console.log('deploy on a full filesystem:', failed.status, failed.stderr.trim().split('\n').at(-1))
      expect(failed.status).toBe(1)
      expect(failed.stderr.trim().split('\n').at(-1)).toMatch(/^error: vps1: .*the host's disk is full \(no space left under the agent's home\): free some space there/)
      expect(failed.stderr).not.toMatch(/\n\s+at /)
      expect((await get(host.routerPort)).body).toMatch(/^hello from web\.1 of v1 /)
      expect(await readFile(join(host.agentHome, 'apps/shop/releases.jsonl'), 'utf8')).toBe(ledger)
      expect(JSON.parse(await readFile(join(host.agentHome, 'apps/shop/config.json'), 'utf8'))).toEqual({})

      await rm(join(host.agentHome, 'filler'))
      const next = await devAsync(['deploy'], {cwd: app, env})
      expect(next.status, next.stderr).toBe(0)
      expect((await get(host.routerPort)).body).toMatch(/^hi from web\.1 of v2 /)
    } finally {
      // The agent (and its dynos) stop before the filesystem goes: its pid file is on it.
      await stopAgentIn(host.agentHome)
      execFileSync('umount', ['-l', host.agentHome])
    }
  }, 120_000)
})
