import {Agent, request, type ClientRequest, type IncomingMessage} from 'node:http'
import type {Socket} from 'node:net'
import type {Duplex, Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import type {ClientChannel} from 'ssh2'

import {callThrough, isReadable, readText, type AgentAnswer, type AgentClient} from '../runtime/agent-client.js'
import {DevError} from '../runtime/dev-error.js'
import type {SshConnection} from './ssh-connection.js'

/**
 * A shell prelude that sets H to the agent's home on the host: $DEV_AGENT_HOME, else
 * /var/lib/dev-agent as root, else ~/.dev-agent. A constant: no user data is ever put in it.
 */
export const AGENT_HOME_SH = 'H="${DEV_AGENT_HOME:-}"; if [ -z "$H" ]; then if [ "$(id -u)" = 0 ]; then H=/var/lib/dev-agent; else H="$HOME/.dev-agent"; fi; fi'

/** Runs the host's agent bridge: the API socket joined to the channel's stdin and stdout. */
const DIAL_STDIO = `${AGENT_HOME_SH}; if [ ! -x "$H/bin/dev-agent" ]; then echo "dev-agent is not installed" >&2; exit 127; fi; exec "$H/bin/dev-agent" dial-stdio`


/**
 * The agent API of one host, over the SSH connection: each request runs `dev-agent dial-stdio` on
 * an exec channel and speaks HTTP/1.1 through it, so the host opens no port but sshd's.
 */
export class RemoteAgent implements AgentClient {
  /** Bridges kept open between requests (HTTP keep-alive): a call costs no new process on the host. */
  private readonly bridges: Agent

  constructor(private readonly ssh: SshConnection) {
    this.bridges = new BridgeAgent(() => this.ssh.exec(DIAL_STDIO))
  }

  get name(): string {
    return this.ssh.target.name
  }

  /** The host's address, as the SSH connection reached it. */
  get hostname(): string {
    return this.ssh.target.hostname
  }

  /** A call: the status and the parsed answer (text when it is not JSON). A body is JSON, bytes or a stream. */
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<AgentAnswer> {
    return callThrough(this, method, path, body, headers)
  }

  /** A request whose answer is read as it comes (a build's output, the log stream). */
  async request(method: string, path: string, options: {body?: Buffer | Readable; headers?: Record<string, string>} = {}): Promise<IncomingMessage> {
    try {
      return await this.send(method, path, options)
    } catch (error) {
      // A kept channel the far side had just closed: a request that can be sent again is, once.
      if (!(error instanceof StaleBridge) || isReadable(options.body)) throw error instanceof StaleBridge ? error.cause : error
      return this.send(method, path, options)
    }
  }

  private send(method: string, path: string, {body, headers = {}}: {body?: Buffer | Readable; headers?: Record<string, string>}): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          method,
          path,
          host: 'agent',
          headers: {'content-type': 'application/json', 'dev-user': localUser(), ...headers, ...(Buffer.isBuffer(body) ? {'content-length': String(body.length)} : {})},
          agent: this.bridges,
        },
        resolve,
      )
      let answered = false
      req.once('response', () => (answered = true))
      req.on('error', (error) => {
        const bridge = bridgeOf(req.socket)
        void Promise.race([bridge?.exited, new Promise((wait) => setTimeout(wait, 1000))]).then((code) => {
          const failure = this.bridgeError((code as number | null | undefined) ?? null, bridge?.stderr ?? '', error)
          reject(req.reusedSocket && !answered ? new StaleBridge(failure) : failure)
        })
      })
      if (body === undefined || Buffer.isBuffer(body)) req.end(body)
      // A body that breaks off (a download from another host dying) fails this request, not hangs it.
      else pipeline(body, req).catch((error: Error) => req.destroy(new Error(`the data to send broke off: ${error.message}`)))
    })
  }

  /**
   * An HTTP upgrade on a channel of its own (an attached one-off run): resolves to the upgraded
   * stream, or rejects with the agent's message when it answers without upgrading.
   */
  async upgrade(method: string, path: string, protocol: string): Promise<Duplex> {
    const channel = await this.ssh.exec(DIAL_STDIO)
    let stderr = ''
    channel.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const exited = new Promise<number | null>((resolve) => channel.once('exit', (code: number | null) => resolve(code)))
    return new Promise((resolve, reject) => {
      const req = request({method, path, host: 'agent', headers: {connection: 'Upgrade', upgrade: protocol, 'dev-user': localUser()}, createConnection: () => asSocket(channel)})
      req.once('upgrade', (_res, socket, head) => {
        if (head.length > 0) socket.unshift(head)
        resolve(socket)
      })
      req.once('response', (res) => {
        void readText(res).then((text) => {
          channel.close()
          let message = text
          try {
            message = String(JSON.parse(text).message ?? text)
          } catch {}
          reject(new DevError(`${this.name}: ${message.trim() || `status ${res.statusCode}`}`))
        }, reject)
      })
      req.once('error', (error) => {
        void Promise.race([exited, new Promise((wait) => setTimeout(wait, 1000))]).then((code) => reject(this.bridgeError((code as number | null | undefined) ?? null, stderr, error)))
      })
      req.end()
    })
  }

  close(): void {
    this.closeBridges()
    this.ssh.close()
  }

  /** Closes the kept channels only (the SSH connection stays for other work). */
  closeBridges(): void {
    this.bridges.destroy()
  }

  /** Why the bridge to the agent failed: not installed, not running, or the connection itself. */
  private bridgeError(code: number | null, stderr: string, error: Error): DevError {
    if (code === 127) return new DevError(`the agent is not installed on ${this.name}: run \`dev hosts setup ${this.name}\``)
    if (/cannot reach|not running/.test(stderr)) return new DevError(`the agent on ${this.name} is not running: run \`dev hosts setup ${this.name}\` to start it`)
    return new DevError(`the agent on ${this.name} did not answer: ${stderr.trim() || error.message}`)
  }
}

/** Idle kept channels go after this long (older agents' servers close theirs after 5 s). */
const IDLE_BRIDGE_MS = 3000

/** A request failed on a kept channel before any answer: it may be sent again on a fresh one. */
class StaleBridge extends Error {
  constructor(override readonly cause: Error) {
    super(cause.message)
  }
}

/** What a bridge's channel said on stderr, and how it ended: why a request on it failed. */
interface Bridge {
  stderr: string
  exited: Promise<number | null>
}

const bridges = new WeakMap<object, Bridge>()

function bridgeOf(socket: unknown): Bridge | undefined {
  return socket ? bridges.get(socket as object) : undefined
}

/** An HTTP agent whose connections are exec channels running `dev-agent dial-stdio`, kept alive between requests. */
class BridgeAgent extends Agent {
  private readonly idle = new WeakMap<object, NodeJS.Timeout>()

  constructor(private readonly open: () => Promise<ClientChannel>) {
    super({keepAlive: true, maxSockets: 8, maxFreeSockets: 2})
  }

  /** A kept channel is closed after a short idle: before an agent's server would close its end. */
  override keepSocketAlive(socket: Duplex): boolean {
    this.idle.set(socket, setTimeout(() => socket.destroy(), IDLE_BRIDGE_MS).unref())
    return true
  }

  override reuseSocket(socket: Duplex, req: ClientRequest): void {
    clearTimeout(this.idle.get(socket))
    super.reuseSocket(socket as never, req)
  }

  override createConnection(_options: unknown, callback: (error: Error | null, socket?: Duplex) => void): Duplex {
    void this.open().then(
      (channel) => {
        const bridge: Bridge = {stderr: '', exited: new Promise((resolve) => channel.once('exit', (code: number | null) => resolve(code)))}
        channel.stderr.on('data', (chunk: Buffer) => (bridge.stderr += chunk.toString()))
        bridges.set(channel, bridge)
        callback(null, asSocket(channel))
      },
      (error: Error) => callback(error),
    )
    return undefined as never
  }
}

/** A channel as Node's HTTP client sees a socket: the few socket calls it makes mean nothing on a channel. */
function asSocket(channel: ClientChannel): Socket {
  const socketLike = channel as ClientChannel & Record<string, unknown>
  for (const name of ['setKeepAlive', 'setNoDelay', 'setTimeout', 'ref', 'unref']) socketLike[name] ??= () => channel
  return channel as unknown as Socket
}

/** Who releases are recorded as made by. */
function localUser(): string {
  // Percent-encoded: a header takes no non-ASCII name (the agent decodes it).
  return encodeURIComponent(process.env.DEV_USER ?? process.env.USER ?? 'unknown')
}
