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
/** How long an upgrade by handover may take: the new build loads (up to 30 s), one-off runs stop (their grace), the new agent adopts every app's dynos. */
const HANDOVER_TIMEOUT_MS = 150_000

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
  /** Whether an upgrade hands the router's socket over (agents started by this setup without systemd). */
  handover?: boolean
  /** The last upgrade this agent called off, and why (its successor could not start). */
  upgrade_error?: {at: string; message: string}
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
  const node = await ssh.run('command -v node && node -v')
  const [nodePath = '', nodeVersion = ''] = node.stdout.trim().split('\n')
  const major = Number(/^v(\d+)\./.exec(nodeVersion)?.[1])
  if (node.code !== 0 || !(major >= MIN_NODE_MAJOR)) {
    const found = node.code === 0 ? `Node ${nodeVersion} is too old` : 'node is not installed'
    throw new DevError(`${name}: ${found}; the agent needs Node >= ${MIN_NODE_MAJOR}. On Debian or Ubuntu: \`curl -fsSL https://deb.nodesource.com/setup_20.x | sudo bash - && sudo apt-get install -y nodejs\``)
  }
  setup.say(`node ${nodeVersion}`)

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
  // Node by its full path: a service manager's PATH may not have it (nvm, /opt).
  const wrapper = `#!/bin/sh\n# The dev agent of this host: the build it runs is in the path below.\nDEV_AGENT_HOME=${quote([home])} exec ${quote([nodePath])} ${quote([file])} "$@"\n`
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
    // A pid from the host goes into a command: a plain number above 1, or nothing is signalled.
    if (!Number.isSafeInteger(running.pid) || running.pid <= 1) throw new DevError(`${name}: the running agent reports pid ${String(running.pid)}; stop it by hand and run setup again`)
    setup.say(running.file === file ? 'restarting the agent for its new settings' : `upgrading the agent (pid ${running.pid}); its dynos keep running`)
    const pid = quote([String(running.pid)])
    if (running.handover === true) {
      // The agent starts the new build itself and hands it the dynos and the router's socket.
      await must(ssh, `kill -USR2 ${pid}`, 'cannot signal the running agent')
      const successor = await startedAgent(ssh, home, HANDOVER_TIMEOUT_MS, (agent) => {
        if (agent.pid !== running.pid) return true
        const error = agent.upgrade_error
        if (error !== undefined && error.at !== running.upgrade_error?.at) throw new DevError(`${name}: the upgrade was called off and the running agent keeps serving: ${error.message}`)
        return false
      })
      // The old agent answers what its open connections still ask, then goes.
      const gone = await ssh.run(untilGone(pid))
      if (gone.code !== 0) setup.say(`the old agent (pid ${running.pid}) is still finishing its open connections`)
      setup.say(`agent ${successor.version} running (pid ${successor.pid}), router on port ${successor.router_port}; no connection was refused`)
      return successor
    }
    // SIGUSR2: the old agent goes and leaves its dynos for the new one to adopt.
    await must(ssh, `kill -USR2 ${pid}; ${untilGone(pid)}`, 'the old agent did not stop')
  }
  await startAgent(ssh, home, running !== undefined)
  const started = await startedAgent(ssh, home, START_TIMEOUT_MS, () => true)
  setup.say(`agent ${started.version} running (pid ${started.pid}), router on port ${started.router_port}`)
  return started
}

/** A shell loop that waits (up to 60 s) for process `pid` (already quoted) to be gone; fails if it is not. */
function untilGone(pid: string): string {
  return `i=0; while kill -0 ${pid} 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1 2>/dev/null || sleep 1; i=$((i+1)); done; ! kill -0 ${pid} 2>/dev/null`
}

/** Waits for an agent that answers and that `wanted` accepts; on timeout, says how the agent's log ends. */
async function startedAgent(ssh: SshConnection, home: string, timeoutMs: number, wanted: (agent: HostAgent) => boolean): Promise<HostAgent> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    // An agent closing its API mid-call (it is handing over) is asked again.
    const agent = await runningAgent(ssh).catch((error: Error) => {
      if (/did not answer/.test(error.message)) return undefined
      throw error
    })
    if (agent !== undefined && wanted(agent)) return agent
    if (Date.now() > deadline) {
      const log = await ssh.run(`tail -n 5 ${quote([`${home}/agent.log`])}`)
      throw new DevError(`${ssh.target.name}: the agent did not start within ${timeoutMs / 1000} s; its log ends: ${log.stdout.trim().split('\n').join(' | ') || '(empty)'}`)
    }
    await sleep(200)
  }
}

/** The running agent's `GET /agent`, or undefined when none answers. */
export async function runningAgent(ssh: SshConnection): Promise<HostAgent | undefined> {
  const agent = new RemoteAgent(ssh)
  try {
    const answer = await agent.call('GET', '/agent')
    return answer.status === 200 ? (answer.json as HostAgent) : undefined
  } catch (error) {
    // Only "not installed" and "not running" mean no agent; anything else must not lead to a second one.
    if (/is not installed|is not running/.test((error as Error).message)) return undefined
    throw error
  } finally {
    agent.closeBridges()
  }
}

/**
 * Starts the daemon: as the `dev-agent` systemd service (Restart=always) when the host runs
 * systemd and we are root, else detached from the SSH session (it writes its pid to agent.pid).
 */
async function startAgent(ssh: SshConnection, home: string, replacing: boolean): Promise<void> {
  const systemd = await ssh.run('[ "$(id -u)" = 0 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null')
  if (systemd.code === 0) {
    // The path goes into the unit quoted as systemd reads it (a home with spaces or % in it).
    const execStart = `"${`${home}/bin/dev-agent`.replace(/["\\]/g, '\\$&').replace(/%/g, '%%')}" daemon`
    const unit = ['[Unit]', 'Description=dev agent: dynos, releases and the HTTP router', 'Wants=network-online.target', 'After=network-online.target', '', '[Service]', `ExecStart=${execStart}`, 'Restart=always', 'RestartSec=1', 'KillMode=process', 'TimeoutStopSec=60', '', '[Install]', 'WantedBy=multi-user.target', ''].join('\n')
    await writeRemote(ssh, '/etc/systemd/system/dev-agent.service', unit, '644')
    // The agent replaced above left on SIGUSR2, and Restart=always brings the new build up by
    // itself: a restart now would SIGTERM it, and SIGTERM stops the dynos.
    await must(ssh, `systemctl daemon-reload && systemctl enable dev-agent.service >/dev/null 2>&1${replacing ? '' : ' && systemctl restart dev-agent.service'}`, 'cannot start the dev-agent service (see journalctl -u dev-agent)')
    return
  }
  const log = quote([`${home}/agent.log`])
  // `cd … || exit` and not `cd … &&`: an and-list would go to the background whole, as a subshell
  // that keeps the channel open and whose pid is not the daemon's.
  // --handover: this agent's upgrades hand the router's socket to the next (no supervisor restarts it).
  await must(ssh, `cd ${quote([home])} || exit 1; nohup setsid ${quote([`${home}/bin/dev-agent`])} daemon --handover >> ${log} 2>&1 < /dev/null &`, 'cannot start the agent')
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
