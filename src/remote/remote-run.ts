import type {Duplex} from 'node:stream'

import {encodeFrame, Frame, FrameParser} from '../agent/run-protocol.js'
import {DevError} from '../runtime/dev-error.js'
import type {RemoteAgent} from './remote-agent.js'

export interface RemoteRunIo {
  stdin: NodeJS.ReadStream
  stdout: NodeJS.WriteStream
  stderr: NodeJS.WriteStream
  signals: NodeJS.EventEmitter
}

/** Signals dev passes on to the run. Ctrl-C and Ctrl-\ on a terminal travel as keys instead. */
const FORWARDED = ['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const
const KEYS = ['SIGINT', 'SIGQUIT'] as const

/** TERM as the agent accepts it. */
const TERM = /^[A-Za-z0-9._+-]{1,64}$/

/**
 * `dev run --host`: a one-off dyno attached to this terminal through the host's agent (the frames
 * of docs/agent-api.md). With a terminal on both ends, the run gets a pseudo-terminal of the same
 * size on the host, keys go through raw (Ctrl-C interrupts the run, not dev) and resizes follow;
 * otherwise stdin, stdout and stderr are piped and signals forwarded. Resolves to the run's exit
 * status; a dropped connection is exit status 255, like ssh's.
 */
export async function attachedRun(agent: RemoteAgent, app: string, command: readonly string[], io: RemoteRunIo): Promise<number> {
  const socket = await agent.upgrade('POST', `/apps/${encodeURIComponent(app)}/dynos`, 'dev-run')
  const tty = io.stdin.isTTY === true && io.stdout.isTTY === true
  const term = process.env.TERM
  const size = () => ({rows: clamp(io.stdout.rows, 24), cols: clamp(io.stdout.columns, 80)})
  socket.write(encodeFrame(Frame.request, JSON.stringify({command, ...(tty ? {tty: size(), ...(term && TERM.test(term) ? {term} : {})} : {})})))

  const cleanups: (() => void)[] = []
  const on = <E extends NodeJS.EventEmitter>(emitter: E, event: string, handler: (...args: any[]) => void) => {
    emitter.on(event, handler)
    cleanups.push(() => emitter.off(event, handler))
  }
  const send = (type: number, payload?: Buffer | string) => socket.writable && socket.write(encodeFrame(type as never, payload))

  if (tty) {
    io.stdin.setRawMode(true)
    cleanups.push(() => io.stdin.setRawMode(false))
    on(io.stdout, 'resize', () => send(Frame.resize, JSON.stringify(size())))
  }
  for (const signal of tty ? FORWARDED : [...FORWARDED, ...KEYS]) on(io.signals, signal, () => send(Frame.signal, signal))
  forwardStdin(io.stdin, socket, on, send)

  try {
    return await new Promise<number>((resolve, reject) => {
      const parser = new FrameParser()
      let done = false
      on(socket, 'data', (chunk: Buffer) => {
        for (const {type, payload} of parser.push(chunk)) {
          if (type === Frame.exit) {
            done = true
            const result = JSON.parse(payload.toString()) as {status?: number; error?: string}
            if (result.error !== undefined) reject(new DevError(`${agent.name}: the run did not start: ${result.error}`))
            else resolve(result.status ?? 1)
            return
          }
          const out = type === Frame.stdout ? io.stdout : type === Frame.stderr ? io.stderr : undefined
          // A slow terminal slows the run down rather than filling memory.
          if (out && !out.write(payload)) {
            socket.pause()
            out.once('drain', () => socket.resume())
          }
        }
      })
      on(socket, 'close', () => {
        if (!done) reject(new DevError(`the connection to ${agent.name} dropped before the run ended; the run was sent SIGHUP`, {exitCode: 255}))
      })
      on(socket, 'error', () => {})
    })
  } finally {
    for (const cleanup of cleanups.reverse()) cleanup()
    io.stdin.pause()
    socket.destroy()
  }
}

/** stdin to the run, with backpressure both ways; its end closes the run's stdin. */
function forwardStdin(stdin: NodeJS.ReadStream, socket: Duplex, on: (emitter: NodeJS.EventEmitter, event: string, handler: (...args: any[]) => void) => void, send: (type: number, payload?: Buffer) => boolean): void {
  on(stdin, 'data', (chunk: Buffer) => {
    if (!send(Frame.stdin, chunk) && socket.writable) {
      stdin.pause()
      socket.once('drain', () => stdin.resume())
    }
  })
  on(stdin, 'end', () => send(Frame.stdinEnd))
  on(stdin, 'error', () => send(Frame.stdinEnd))
  stdin.resume()
}

function clamp(value: number | undefined, otherwise: number): number {
  return Math.min(1000, Math.max(1, value || otherwise))
}

/** A detached one-off dyno: started, not waited for; its output goes to the log stream. Resolves to its name (`run.1`). */
export async function detachedRun(agent: RemoteAgent, app: string, command: readonly string[]): Promise<string> {
  const answer = await agent.call('POST', `/apps/${encodeURIComponent(app)}/dynos`, {command, attach: false})
  if (answer.status !== 201) throw new DevError(`${agent.name}: ${answer.json?.message ?? answer.text}`)
  return String(answer.json.name)
}
