import type {ChildProcess} from 'node:child_process'
import type {IncomingMessage} from 'node:http'
import {constants} from 'node:os'
import type {Duplex} from 'node:stream'

import {z} from 'zod'

import {ENV_KEY} from '../runtime/env-file.js'
import {signalGroup} from '../runtime/process-group.js'
import {AppError} from './app-error.js'
import type {AppDynos} from './app-dynos.js'
import {encodeFrame, Frame, FrameParser} from './run-protocol.js'

/** What a one-off run asks for: the command as argv (a Procfile type's name runs its command). */
export const RunRequest = z
  .object({
    command: z.array(z.string()).min(1, 'command needs at least one word'),
    env: z.record(z.string().regex(ENV_KEY, 'an environment variable name'), z.string()).optional(),
  })
  .strict()
export type RunRequest = z.infer<typeof RunRequest>

/** Signals a client may send an attached run (what a terminal's keys and a resize produce). */
const CLIENT_SIGNALS = new Set(['SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'])

const PATH = /^\/apps\/([^/]+)\/dynos$/

/**
 * Serves `POST /apps/:app/dynos` with `Upgrade: dev-run`: an attached one-off run whose stdin,
 * stdout, stderr, signals and exit status travel as frames (run-protocol.ts) on the upgraded
 * connection. When the connection drops before the run ends, the run gets SIGHUP, then SIGKILL
 * after the stop grace (logged R16).
 */
export function runUpgradeHandler(deps: {dynosOf: (app: string) => Promise<AppDynos>; graceMs: number}) {
  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = new URL(req.url ?? '/', 'http://agent').pathname
    const match = PATH.exec(path)
    if (req.method !== 'POST' || !match || String(req.headers.upgrade).toLowerCase() !== 'dev-run') {
      refuse(socket, 404, `no upgrade to ${String(req.headers.upgrade)} at ${req.method} ${path}; attached runs are POST /apps/:app/dynos with Upgrade: dev-run`)
      return
    }
    const app = decodeURIComponent(match[1]!)
    const user = String(req.headers['dev-user'] ?? 'unknown')
    deps.dynosOf(app).then(
      (dynos) => {
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: dev-run\r\nConnection: Upgrade\r\n\r\n')
        attach(socket, head, dynos, user, deps.graceMs)
      },
      (error: unknown) => refuse(socket, error instanceof AppError ? error.status : 500, error instanceof AppError ? error.message : 'internal error; see the agent log'),
    )
  }
}

/** Answers an upgrade request with a plain HTTP error and closes the connection. */
function refuse(socket: Duplex, status: number, message: string): void {
  const body = `${JSON.stringify({id: status === 404 ? 'not_found' : 'bad_request', message})}\n`
  socket.end(`HTTP/1.1 ${status} Refused\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
}

function attach(socket: Duplex, head: Buffer, dynos: AppDynos, user: string, graceMs: number): void {
  const parser = new FrameParser()
  let child: ChildProcess | undefined
  let ended = false
  const finish = (result: {status: number} | {error: string}) => {
    if (ended) return
    ended = true
    socket.end(encodeFrame(Frame.exit, JSON.stringify(result)))
  }
  const onFrames = async (chunk: Buffer) => {
    let frames
    try {
      frames = parser.push(chunk)
    } catch (error) {
      finish({error: (error as Error).message})
      return
    }
    for (const {type, payload} of frames) {
      if (ended) return
      if (child === undefined) {
        if (type !== Frame.request) return finish({error: 'the first frame must be the run request'})
        child = await start(payload)
        if (child === undefined) return
        continue
      }
      if (type === Frame.stdin) child.stdin?.write(payload)
      else if (type === Frame.stdinEnd) child.stdin?.end()
      else if (type === Frame.signal && CLIENT_SIGNALS.has(payload.toString()) && child.pid !== undefined) signalGroup(child.pid, payload.toString() as NodeJS.Signals)
    }
  }
  const start = async (payload: Buffer): Promise<ChildProcess | undefined> => {
    let request: RunRequest
    try {
      const parsed = RunRequest.safeParse(JSON.parse(payload.toString()))
      if (!parsed.success) throw new Error(`invalid run request at ${parsed.error.issues[0]!.path.join('.') || 'the top'}: ${parsed.error.issues[0]!.message}`)
      request = parsed.data
    } catch (error) {
      finish({error: (error as Error).message})
      return undefined
    }
    let run: ChildProcess
    try {
      run = (await dynos.startRun({...request, attach: true, user})).child
    } catch (error) {
      finish({error: error instanceof AppError ? error.message : 'internal error; see the agent log'})
      return undefined
    }
    relay(run, socket)
    run.stdin?.on('error', () => {})
    run.once('close', (code, signal) => finish({status: code ?? 128 + signalNumber(signal)}))
    return run
  }
  // Frames are handled in order, each chunk after the one before (starting the run takes a moment).
  let handled = Promise.resolve()
  const onData = (chunk: Buffer) => {
    handled = handled.then(() => onFrames(chunk))
  }
  socket.on('data', onData)
  socket.on('error', () => {})
  // The client's end of the stream means it is gone (its stdin ends with a frame, not with EOF);
  // upgraded sockets are half-open, so nothing would close ours otherwise.
  socket.once('end', () => socket.destroy())
  socket.once('close', () => {
    if (ended || child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
    const pid = child.pid
    dynos.runDisconnected(pid)
    signalGroup(pid, 'SIGHUP')
    setTimeout(() => {
      if (signalGroup(pid, 0)) {
        dynos.runLost(pid)
        signalGroup(pid, 'SIGKILL')
      }
    }, graceMs).unref()
  })
  if (head.length > 0) onData(head)
}

/** The run's stdout and stderr as frames; the run waits while the client reads slowly. */
function relay(child: ChildProcess, socket: Duplex): void {
  for (const [stream, type] of [
    [child.stdout!, Frame.stdout],
    [child.stderr!, Frame.stderr],
  ] as const) {
    stream.on('data', (chunk: Buffer) => {
      if (!socket.writable) return
      if (!socket.write(encodeFrame(type, chunk))) {
        stream.pause()
        socket.once('drain', () => stream.resume())
      }
    })
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal === null ? 0 : (constants.signals[signal] ?? 0)
}
