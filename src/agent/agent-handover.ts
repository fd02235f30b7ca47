import {spawn, type ChildProcess} from 'node:child_process'
import {existsSync} from 'node:fs'
import {join} from 'node:path'

/**
 * An agent upgrade without a refused connection (`dev-agent daemon --handover`, how `dev hosts
 * setup` starts agents on hosts without systemd). On SIGUSR2 the running agent starts the installed
 * build as its successor, with an IPC channel:
 *
 * 1. the successor loads and says `ready` (a build that cannot start ends here: the old agent
 *    carries on as if nothing had been asked);
 * 2. the old agent closes its API, lets its dynos go (dynos.json written), and sends `go` with its
 *    router's listening socket, which stays open throughout, so no connection is ever refused;
 * 3. the successor adopts the dynos, accepts on that socket, opens the API and says `serving`;
 * 4. the old agent stops accepting, answers what its open connections still ask with
 *    `Connection: close`, and exits once they are gone (or at the drain deadline).
 *
 * A successor that ends (or does not serve in time) after step 2 is stopped, and the old agent
 * takes its dynos back, opens its API again and keeps serving, as if the upgrade had not been asked.
 */

/** The environment variable that tells a starting daemon it is a successor. */
const SUCCESSOR_ENV = 'DEV_AGENT_SUCCESSOR'
/** How long a successor may take to load before the upgrade is called off. */
const READY_TIMEOUT_MS = 30_000

type Message = {type: 'ready'} | {type: 'go'} | {type: 'serving'}

/** A listening socket as the IPC channel carries it: libuv's TCP handle, as node:cluster passes it. */
export type ListeningHandle = object

/** The successor as the old agent sees it once it is ready. */
export interface Successor {
  pid: number
  /** Hands over: the router's listening socket goes with it (or none when the port changes). False if the successor is gone. */
  go(handle: ListeningHandle | undefined): boolean
  /** Ends a successor that did not take over in time. */
  kill(): void
  /** Settles when the successor serves, exits, or has not served within `ms`. */
  serving(ms: number): Promise<'serving' | 'exited' | 'timeout'>
}

/**
 * Starts the installed build (`$DEV_AGENT_HOME/bin/dev-agent`, else this same file) as a successor
 * and waits until it is ready. Rejects, with the successor gone, when it cannot start.
 */
export async function startSuccessor(home: string, args: readonly string[]): Promise<Successor> {
  const wrapper = join(home, 'bin', 'dev-agent')
  const [command, argv] = existsSync(wrapper) ? [wrapper, ['daemon', ...args]] : [process.execPath, [process.argv[1]!, 'daemon', ...args]]
  // Its own session, like the agent setup starts: it outlives this one. Its output goes where ours goes.
  const child = spawn(command, argv, {detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: {...process.env, [SUCCESSOR_ENV]: '1'}})
  const exited = new Promise<string>((resolve) => {
    // `on`, not `once`: a send on a channel that has just closed is a second error, never to be thrown.
    child.on('error', (error) => resolve(error.message))
    child.once('exit', (code, signal) => resolve(signal ? `killed by ${signal}` : `exit status ${code}`))
  })
  const ready = nextMessage(child, 'ready')
  let timer: NodeJS.Timeout | undefined
  const outcome = await Promise.race([
    ready.then(() => undefined),
    exited.then((how) => `it ended (${how}) before it was ready`),
    new Promise<string>((resolve) => (timer = setTimeout(resolve, READY_TIMEOUT_MS, `it was not ready within ${READY_TIMEOUT_MS / 1000} s`))),
  ])
  clearTimeout(timer)
  if (outcome !== undefined) {
    child.kill('SIGKILL')
    throw new Error(`the new agent (${command}) did not start: ${outcome}`)
  }
  const pid = child.pid!
  return {
    pid,
    go(handle) {
      if (!child.connected) return false
      try {
        return child.send({type: 'go'} satisfies Message, handle as never)
      } catch {
        return false
      }
    },
    kill() {
      child.kill('SIGKILL')
    },
    async serving(ms) {
      const served = nextMessage(child, 'serving').then(() => 'serving' as const)
      let deadline: NodeJS.Timeout | undefined
      const result = await Promise.race([served, exited.then(() => 'exited' as const), new Promise<'timeout'>((resolve) => (deadline = setTimeout(resolve, ms, 'timeout')))])
      clearTimeout(deadline)
      // The old agent goes without waiting for the channel or the child.
      if (child.connected) child.disconnect()
      child.unref()
      return result
    },
  }
}

/** The next message of `type` from the child (ignoring any other). */
function nextMessage(child: ChildProcess, type: Message['type']): Promise<void> {
  return new Promise((resolve) => {
    const listener = (message: Message) => {
      if (message?.type !== type) return
      child.off('message', listener)
      resolve()
    }
    child.on('message', listener)
  })
}

/** The successor's side, when this daemon was started as one (undefined otherwise). */
export interface Predecessor {
  /** The router's listening socket, when the port stays the same. */
  handle: ListeningHandle | undefined
  /** Says the successor serves, and lets go of the old agent. */
  serving(): void
}

/**
 * In a daemon started as a successor: says `ready`, then waits for `go` and the socket. Resolves
 * undefined in a daemon started any other way; rejects when the old agent calls the upgrade off.
 */
export async function awaitPredecessor(): Promise<Predecessor | undefined> {
  const successor = process.env[SUCCESSOR_ENV] === '1'
  // Not passed on to dynos, nor to a later successor by mistake.
  delete process.env[SUCCESSOR_ENV]
  if (!successor || process.send === undefined) return undefined
  const handle = await new Promise<ListeningHandle | undefined>((resolve, reject) => {
    const gone = () => reject(new Error('the running agent called the upgrade off'))
    process.once('disconnect', gone)
    process.on('message', function listener(message: Message, received?: ListeningHandle) {
      if (message?.type !== 'go') return
      process.off('message', listener)
      process.off('disconnect', gone)
      resolve(received)
    })
    process.send!({type: 'ready'} satisfies Message)
  })
  return {
    handle,
    serving() {
      process.send?.({type: 'serving'} satisfies Message, undefined, {}, () => {
        if (process.connected) process.disconnect()
      })
    },
  }
}
