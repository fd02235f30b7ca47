import {copyFile, readFile, appendFile} from 'node:fs/promises'
import {request} from 'node:http'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {runningAgent, setupHost} from '../../src/remote/host-setup.js'
import {RemoteAgent} from '../../src/remote/remote-agent.js'
import {connectSsh} from '../../src/remote/ssh-connection.js'
import {resolveSshTarget} from '../../src/remote/ssh-target.js'
import {agentAppSlug, allUp, eventually, type AgentDyno} from '../support/agent.js'
import {processAlive} from '../support/processes.js'
import {projectRoot} from '../support/run-bin.js'
import {startSshHosts} from '../support/ssh-hosts.js'

function viaRouter(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    request({host: '127.0.0.1', port, headers: {host: 'shop'}, agent: false}, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => (body += chunk.toString()))
      res.on('end', () => resolve(body))
    })
      .on('error', reject)
      .end()
  })
}

describe('dev hosts setup (real sshd, the real agent)', () => {
  it('installs and starts the agent, is idempotent, and upgrades it with its dynos kept running', async () => {
    const {hosts, env, dir} = await startSshHosts(1)
    const [vps1] = hosts
    const ssh = await connectSsh(await resolveSshTarget('vps1', env), {env})
    const said: string[] = []
    try {
      const agent = await setupHost(ssh, {agentFile: join(projectRoot, 'dist/agent.cjs'), routerPort: vps1!.routerPort, say: (text) => said.push(text)})
      expect(agent).toMatchObject({router_port: vps1!.routerPort, node: process.version})
      expect(agent.file).toMatch(new RegExp(`^${vps1!.agentHome}/agent/[0-9a-f]{64}/agent\\.cjs$`))
      expect(said).toEqual([`node ${process.version}`, expect.stringMatching(/^uploading the agent \(\d+ KiB\)$/), `agent ${agent.version} running (pid ${agent.pid}), router on port ${vps1!.routerPort}`])
      expect(JSON.parse(await readFile(join(vps1!.agentHome, 'agent.json'), 'utf8')).router_port).toBe(vps1!.routerPort)

      // Again: nothing to do.
      said.length = 0
      expect((await setupHost(ssh, {agentFile: join(projectRoot, 'dist/agent.cjs'), routerPort: vps1!.routerPort, say: (text) => said.push(text)})).pid).toBe(agent.pid)
      expect(said).toEqual([`node ${process.version}`, `agent ${agent.version} already running (pid ${agent.pid})`])

      // An app deployed through the SSH bridge serves through the host's router.
      const api = new RemoteAgent(ssh)
      // Calls far apart on kept channels: the idle one goes before the agent could close its end.
      expect((await api.call('GET', '/agent')).status).toBe(200)
      await new Promise((resolve) => setTimeout(resolve, 6500))
      expect((await api.call('GET', '/agent')).status).toBe(200)
      const slug = await agentAppSlug()
      expect((await api.call('POST', '/apps', {name: 'shop'})).status).toBe(201)
      expect((await api.call('PUT', `/slugs/${slug.sha256}`, slug.bytes)).status).toBe(201)
      expect((await api.call('POST', '/apps/shop/releases', {slug: slug.sha256})).status).toBe(201)
      const [web] = await eventually(async () => (await api.call('GET', '/apps/shop/dynos')).json as AgentDyno[], allUp)
      expect(await viaRouter(vps1!.routerPort)).toMatch(/^hello from web\.1 of v1/)

      // A newer build: uploaded, swapped in, and the dyno is adopted rather than restarted.
      const newer = join(dir, 'agent-newer.cjs')
      await copyFile(join(projectRoot, 'dist/agent.cjs'), newer)
      await appendFile(newer, '\n// a newer build\n')
      const upgraded = await setupHost(ssh, {agentFile: newer, say: () => {}})
      expect(upgraded.pid).not.toBe(agent.pid)
      expect(upgraded.file).not.toBe(agent.file)
      expect(processAlive(agent.pid)).toBe(false)
      const [adopted] = await eventually(async () => (await api.call('GET', '/apps/shop/dynos')).json as AgentDyno[], allUp)
      expect(adopted!.pid).toBe(web!.pid)
      expect(await viaRouter(vps1!.routerPort)).toMatch(/^hello from web\.1 of v1/)
    } finally {
      ssh.close()
    }
  })

  it('upgrades an agent from before handovers by stopping it and starting the new build', async () => {
    const {hosts, env, dir} = await startSshHosts(1)
    const [vps1] = hosts
    const ssh = await connectSsh(await resolveSshTarget('vps1', env), {env})
    try {
      const first = await setupHost(ssh, {agentFile: join(projectRoot, 'dist/agent.cjs'), routerPort: vps1!.routerPort, say: () => {}})
      expect(first.handover).toBe(true)
      // An agent as earlier setups started it: no --handover, so SIGUSR2 makes it go.
      process.kill(first.pid, 'SIGKILL')
      await eventually(async () => processAlive(first.pid), (alive) => !alive)
      await ssh.run(`cd ${vps1!.agentHome} || exit 1; nohup setsid ${vps1!.agentHome}/bin/dev-agent daemon >> agent.log 2>&1 < /dev/null &`)
      const legacy = await eventually(() => runningAgent(ssh), (agent) => agent !== undefined)
      expect(legacy!.handover).toBe(false)

      const newer = join(dir, 'agent-newer.cjs')
      await copyFile(join(projectRoot, 'dist/agent.cjs'), newer)
      await appendFile(newer, '\n// a newer build\n')
      const said: string[] = []
      const upgraded = await setupHost(ssh, {agentFile: newer, say: (text) => said.push(text)})
      expect(said.slice(-2)).toEqual([`upgrading the agent (pid ${legacy!.pid}); its dynos keep running`, `agent ${upgraded.version} running (pid ${upgraded.pid}), router on port ${vps1!.routerPort}`])
      expect(upgraded.handover).toBe(true)
      expect(processAlive(legacy!.pid)).toBe(false)
    } finally {
      ssh.close()
    }
  })

  it('says when the agent is not installed, and when Node is missing', async () => {
    const {env} = await startSshHosts(1)
    const ssh = await connectSsh(await resolveSshTarget('vps1', env), {env})
    try {
      await expect(new RemoteAgent(ssh).call('GET', '/agent')).rejects.toThrow('the agent is not installed on vps1: run `dev hosts setup vps1`')
    } finally {
      ssh.close()
    }
  })
})
