import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {setupHost} from '../../src/remote/host-setup.js'
import {connectSsh} from '../../src/remote/ssh-connection.js'
import {resolveSshTarget} from '../../src/remote/ssh-target.js'
import {projectRoot, runBin} from '../support/run-bin.js'
import {startSshHosts} from '../support/ssh-hosts.js'
import {tempApp} from '../support/temp-app.js'

describe('dev hosts (the real dev, real sshd)', () => {
  it('sets a host up, shows its status, and lists the hosts an app targets', async () => {
    const {hosts, env} = await startSshHosts(1)
    const [vps1] = hosts
    const setup = runBin(['hosts', 'setup', 'vps1', '--router-port', String(vps1!.routerPort)], {env})
    expect(setup.stderr).toMatch(/^vps1: node v20\.\d+\.\d+\nvps1: uploading the agent \(\d+ KiB\)\nvps1: agent 0\.1\.0 running \(pid \d+\), router on port \d+\n$/)
    expect(setup).toMatchObject({status: 0, stdout: `vps1: dev-agent 0.1.0 (node ${process.version}), router on port ${vps1!.routerPort}\n`})

    const status = runBin(['hosts', 'status', 'vps1'], {env})
    expect(status).toMatchObject({status: 0, stdout: expect.stringMatching(new RegExp(`^vps1: dev-agent 0\\.1\\.0 \\(node ${process.version}\\), up \\d+s, router on port ${vps1!.routerPort}\\n  no apps\\n$`))})

    const root = await tempApp({'dev.json': JSON.stringify({app: 'shop', hosts: ['vps1']})})
    expect(runBin(['hosts', '--json'], {cwd: root, env}).stdout).toBe(`${JSON.stringify({app: 'shop', hosts: [{name: 'vps1', user: process.env.USER ?? 'root', hostname: '127.0.0.1', port: vps1!.port}]}, null, 2)}\n`)
    expect(runBin(['hosts', 'status', '--json'], {cwd: root, env}).status).toBe(0)
  })

  it('refuses to work with an agent older than this dev until hosts setup upgrades it', async () => {
    const {hosts, env, dir} = await startSshHosts(1)
    const older = join(dir, 'agent-older.cjs')
    await writeFile(older, (await readFile(join(projectRoot, 'dist/agent.cjs'), 'utf8')).replaceAll('"0.1.0"', '"0.0.9"'))
    const ssh = await connectSsh(await resolveSshTarget('vps1', env), {env})
    try {
      await setupHost(ssh, {agentFile: older, routerPort: hosts[0]!.routerPort, say: () => {}})
    } finally {
      ssh.close()
    }
    const root = await tempApp({'dev.json': JSON.stringify({app: 'shop', hosts: ['vps1']})})
    const refused = runBin(['domains'], {cwd: root, env})
    expect(refused).toMatchObject({status: 1, stderr: 'error: the agent on vps1 is dev-agent 0.0.9, older than this dev (0.1.0): run `dev hosts setup vps1` to upgrade it (its dynos keep running)\n'})
    expect(runBin(['hosts', 'setup', 'vps1'], {env}).status).toBe(0)
    expect(runBin(['domains'], {cwd: root, env})).toMatchObject({status: 0, stderr: 'vps1: shop has no domains\n'})
  })

  it('refuses an unknown host in one line that says how to trust it, and a bad dev.json', async () => {
    const {env} = await startSshHosts(1, {knownHosts: false})
    const refused = runBin(['hosts', 'status', 'vps1'], {env})
    expect(refused.status).toBe(1)
    expect(refused.stderr).toMatch(/^error: refusing to connect: vps1 \(\[127\.0\.0\.1\]:\d+\) is not a known host: its key is ssh-ed25519 SHA256:\S+\. If that is the key of your server, trust it with --accept-new-host-key \(or `ssh vps1` once\)\n$/)
    const root = await tempApp({})
    await writeFile(join(root, 'dev.json'), '{"hosts": "vps1"}')
    const bad = runBin(['hosts'], {cwd: root, env})
    expect(bad.status).toBe(1)
    expect(bad.stderr).toBe(`error: ${join(root, 'dev.json')}: hosts: Invalid input: expected array, received string\n`)
  })
})
