import {spawn, type ChildProcess} from 'node:child_process'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {connect} from 'node:net'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterEach} from 'vitest'

import {testAgentSettings} from './agent.js'
import {freePort} from './free-port.js'
import {processAlive} from './processes.js'
import {tempApp} from './temp-app.js'

/** One test host: a real OpenSSH sshd on 127.0.0.1, with its own host key and agent home. */
export interface TestHost {
  /** Its Host name in the ssh config (`vps1`). */
  name: string
  port: number
  /** DEV_AGENT_HOME of sessions on it (sshd SetEnv). */
  agentHome: string
  /** The port its agent's router is to take (dev hosts setup --router-port). */
  routerPort: number
  /** `ssh-ed25519 AAAA…` */
  hostKey: string
  sshd: ChildProcess
}

const running: ChildProcess[] = []
const agentHomes: string[] = []
afterEach(async () => {
  // Agents that dev hosts setup started on the test hosts stop (with their dynos) before their sshd.
  await Promise.all(agentHomes.splice(0).map((home) => stopAgentOf(home)))
  await Promise.all(
    running.splice(0).map(async (sshd) => {
      if (sshd.exitCode !== null || sshd.signalCode !== null) return
      const exited = new Promise((resolve) => sshd.once('exit', resolve))
      sshd.kill('SIGTERM')
      await exited
    }),
  )
})

/**
 * Starts `count` sshd test hosts and writes an ssh config naming them vps1…vpsN (key login as the
 * current user, IdentitiesOnly, their own known_hosts) and, unless `knownHosts: false`, a
 * known_hosts that trusts them. Use `env` (DEV_SSH_CONFIG) for the code under test.
 */
export async function startSshHosts(count: number, {knownHosts = true}: {knownHosts?: boolean} = {}) {
  const dir = join(await tempApp({}), 'ssh')
  await mkdir(dir, {recursive: true, mode: 0o700})
  const clientKey = join(dir, 'id_ed25519')
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'dev-test', '-f', clientKey])
  await writeFile(join(dir, 'authorized_keys'), await readFile(`${clientKey}.pub`), {mode: 0o600})
  // sshd wants its privilege separation directory even when it runs as root for tests.
  await mkdir('/run/sshd', {recursive: true, mode: 0o755}).catch(() => {})
  const hosts: TestHost[] = []
  let config = ''
  const knownHostsFile = join(dir, 'known_hosts')
  for (let index = 1; index <= count; index++) {
    const name = `vps${index}`
    const hostDir = join(dir, name)
    await mkdir(hostDir, {mode: 0o700})
    const hostKeyFile = join(hostDir, 'host_ed25519')
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', hostKeyFile])
    const port = await freePort()
    const agentHome = join(hostDir, 'agent-home')
    // Short timeouts and ports of its own, as for every test agent; setup sets the router port.
    await mkdir(agentHome, {mode: 0o700})
    await writeFile(join(agentHome, 'agent.json'), JSON.stringify({...testAgentSettings(), router_port: 0}))
    agentHomes.push(agentHome)
    const sshdConfig = join(hostDir, 'sshd_config')
    await writeFile(
      sshdConfig,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKeyFile}`,
        `PidFile ${join(hostDir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        'StrictModes no',
        'UsePAM no',
        `SetEnv DEV_AGENT_HOME=${agentHome}`,
        'LogLevel ERROR',
        '',
      ].join('\n'),
    )
    const sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', sshdConfig], {stdio: ['ignore', 'ignore', 'pipe']})
    running.push(sshd)
    let stderr = ''
    sshd.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    await waitForPort(port, () => stderr)
    const hostKey = (await readFile(`${hostKeyFile}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ')
    if (knownHosts) await writeFile(knownHostsFile, `[127.0.0.1]:${port} ${hostKey}\n`, {flag: 'a', mode: 0o600})
    hosts.push({name, port, agentHome, routerPort: await freePort(), hostKey, sshd})
    config += [`Host ${name}`, '  HostName 127.0.0.1', `  Port ${port}`, `  User ${process.env.USER ?? 'root'}`, `  IdentityFile ${clientKey}`, '  IdentitiesOnly yes', `  UserKnownHostsFile ${knownHostsFile}`, '  StrictHostKeyChecking yes', '  ConnectTimeout 10', ''].join('\n')
  }
  const configFile = join(dir, 'config')
  await writeFile(configFile, config)
  // No ssh-agent of the machine running the tests takes part.
  const env: NodeJS.ProcessEnv = {...process.env, DEV_SSH_CONFIG: configFile, SSH_AUTH_SOCK: ''}
  return {hosts, configFile, knownHostsFile, clientKey, env, dir}
}

/** Stops the agent whose pid a host's agent home records, and waits until it is gone. */
async function stopAgentOf(home: string): Promise<void> {
  const pid = Number(await readFile(join(home, 'agent.pid'), 'utf8').catch(() => ''))
  if (!(pid > 0)) return
  try {
    process.kill(pid, 'SIGTERM')
  } catch {
    return
  }
  // Reparented away from us, it may stay a zombie for a while: that counts as gone.
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    if (!processAlive(pid)) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  process.kill(pid, 'SIGKILL')
}

async function waitForPort(port: number, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (open) return
    if (Date.now() > deadline) throw new Error(`sshd did not listen on ${port}: ${stderr()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
