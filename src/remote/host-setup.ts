import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {setTimeout as sleep} from 'node:timers/promises'

import {quote} from 'shell-quote'

import {DevError} from '../runtime/dev-error.js'
import {AGENT_HOME_SH, RemoteAgent} from './remote-agent.js'
import type {SshConnection} from './ssh-connection.js'

/** The oldest Node the agent runs on. */
const MIN_NODE_MAJOR = 20

/** How long a started agent has to answer its API. */
const START_TIMEOUT_MS = 15_000

export interface HostSetup {
  /** The agent file to install (dist/agent.cjs). */
  agentFile: string
  /** Sets `router_port` in the host's agent.json. */
  routerPort?: number
  /** One line per step, for the user. */
  say: (text: string) => void
}

export interface HostAgent {
  version: string
  node: string
  router_port: number
  started_at: string
  pid: number
  file: string
}

/**
 * `dev hosts setup`: makes a host run the agent this dev carries. Idempotent: each step checks
 * first. Checks Node on the host; uploads the agent file (content-addressed, sha256 verified) if
 * that build is not there; installs the `dev-agent` wrapper; sets the router port; starts the
 * daemon (a systemd service where systemd runs, else a detached process with its pid recorded);
 * an agent of another build is replaced with its dynos left running for the new one to adopt.
 */
export async function setupHost(ssh: SshConnection, setup: HostSetup): Promise<HostAgent> {
  const name = ssh.target.name
  const node = await ssh.run('command -v node >/dev/null 2>&1 && node -v')
  const major = Number(/^v(\d+)\./.exec(node.stdout.trim())?.[1])
  if (node.code !== 0 || !(major >= MIN_NODE_MAJOR)) {
    const found = node.code === 0 ? `Node ${node.stdout.trim()} is too old` : 'node is not installed'
    throw new DevError(`${name}: ${found}; the agent needs Node >= ${MIN_NODE_MAJOR}. On Debian or Ubuntu: \`curl -fsSL https://deb.nodesource.com/setup_20.x | sudo bash - && sudo apt-get install -y nodejs\``)
  }
  setup.say(`node ${node.stdout.trim()}`)

  const home = (await must(ssh, `${AGENT_HOME_SH}; mkdir -p "$H/bin" "$H/agent" && chmod 700 "$H" && printf %s "$H"`, 'cannot make the agent home')).stdout
  const agent = await readFile(setup.agentFile)
  const sha = createHash('sha256').update(agent).digest('hex')
  const dir = `${home}/agent/${sha}`
  const file = `${dir}/agent.cjs`
  if ((await ssh.run(quote(['test', '-f', file]))).code !== 0) {
    setup.say(`uploading the agent (${Math.round(agent.length / 1024)} KiB)`)
    const partial = `${file}.partial`
    await must(ssh, `mkdir -p ${quote([dir])} && cat > ${quote([partial])}`, 'cannot upload the agent', agent)
    const check = await must(ssh, quote(['sha256sum', partial]), 'cannot check the uploaded agent')
    if (!check.stdout.startsWith(sha)) throw new DevError(`${name}: the uploaded agent is damaged (sha256 ${check.stdout.slice(0, 64)}, expected ${sha}); run setup again`)
    await must(ssh, quote(['mv', partial, file]), 'cannot install the agent')
  }
  const wrapper = `#!/bin/sh\n# The dev agent of this host: the build it runs is in the path below.\nDEV_AGENT_HOME=${quote([home])} exec node ${quote([file])} "$@"\n`
  await writeRemote(ssh, `${home}/bin/dev-agent`, wrapper, '755')

  let restart = false
  if (setup.routerPort !== undefined) {
    const current = await ssh.run(quote(['cat', `${home}/agent.json`]))
    const settings = current.code === 0 && current.stdout.trim() !== '' ? (JSON.parse(current.stdout) as Record<string, unknown>) : {}
    if (settings.router_port !== setup.routerPort) {
      await writeRemote(ssh, `${home}/agent.json`, `${JSON.stringify({...settings, router_port: setup.routerPort}, null, 2)}\n`, '600')
      restart = true
    }
  }

  const running = await runningAgent(ssh)
  if (running !== undefined && running.file === file && !restart) {
    setup.say(`agent ${running.version} already running (pid ${running.pid})`)
    return running
  }
  if (running !== undefined) {
    setup.say(running.file === file ? 'restarting the agent for its new settings' : `upgrading the agent (pid ${running.pid}); its dynos keep running`)
    // SIGUSR2: the old agent goes and leaves its dynos for the new one to adopt.
    await must(ssh, `kill -USR2 ${running.pid}; i=0; while kill -0 ${running.pid} 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; ! kill -0 ${running.pid} 2>/dev/null`, 'the old agent did not stop')
  }
  await startAgent(ssh, home)
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    const started = await runningAgent(ssh)
    if (started !== undefined) {
      setup.say(`agent ${started.version} running (pid ${started.pid}), router on port ${started.router_port}`)
      return started
    }
    if (Date.now() > deadline) {
      const log = await ssh.run(`tail -n 5 ${quote([`${home}/agent.log`])}`)
      throw new DevError(`${name}: the agent did not start within ${START_TIMEOUT_MS / 1000} s; its log ends: ${log.stdout.trim().split('\n').join(' | ') || '(empty)'}`)
    }
    await sleep(200)
  }
}

/** The running agent's `GET /agent`, or undefined when none answers. */
export async function runningAgent(ssh: SshConnection): Promise<HostAgent | undefined> {
  try {
    const answer = await new RemoteAgent(ssh).call('GET', '/agent')
    return answer.status === 200 ? (answer.json as HostAgent) : undefined
  } catch {
    return undefined
  }
}

/**
 * Starts the daemon: as the `dev-agent` systemd service (Restart=always) when the host runs
 * systemd and we are root, else detached from the SSH session with its pid in agent.pid.
 */
async function startAgent(ssh: SshConnection, home: string): Promise<void> {
  const systemd = await ssh.run('[ "$(id -u)" = 0 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null')
  if (systemd.code === 0) {
    const unit = ['[Unit]', 'Description=dev agent: dynos, releases and the HTTP router', 'After=network-online.target', '', '[Service]', `ExecStart=${home}/bin/dev-agent daemon`, 'Restart=always', 'RestartSec=1', 'KillMode=process', 'TimeoutStopSec=60', '', '[Install]', 'WantedBy=multi-user.target', ''].join('\n')
    await writeRemote(ssh, '/etc/systemd/system/dev-agent.service', unit, '644')
    await must(ssh, 'systemctl daemon-reload && systemctl enable dev-agent.service >/dev/null 2>&1 && systemctl restart dev-agent.service', 'cannot start the dev-agent service')
    return
  }
  const log = quote([`${home}/agent.log`])
  const pid = quote([`${home}/agent.pid`])
  // `cd … || exit` and not `cd … &&`: an and-list would go to the background whole, as a subshell
  // that keeps the channel open and whose pid is not the daemon's.
  await must(ssh, `cd ${quote([home])} || exit 1; nohup setsid ${quote([`${home}/bin/dev-agent`])} daemon >> ${log} 2>&1 < /dev/null & echo $! > ${pid}`, 'cannot start the agent')
}

/** Writes a file on the host atomically (temporary file, then rename) with the given mode. */
async function writeRemote(ssh: SshConnection, path: string, content: string, mode: string): Promise<void> {
  const partial = `${path}.partial`
  await must(ssh, `cat > ${quote([partial])} && chmod ${mode} ${quote([partial])} && mv ${quote([partial, path])}`, `cannot write ${path}`, content)
}

/** Runs a command that must succeed; its failure names the host, the step and what the host said. */
async function must(ssh: SshConnection, command: string, what: string, input?: Buffer | string): Promise<{stdout: string; stderr: string}> {
  const result = await ssh.run(command, input)
  if (result.code !== 0) throw new DevError(`${ssh.target.name}: ${what}: ${result.stderr.trim().split('\n')[0] || `exit status ${result.code}`}`)
  return result
}
