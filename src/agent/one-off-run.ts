import type {ChildProcess} from 'node:child_process'
import {STATUS_CODES, type IncomingMessage} from 'node:http'
import {constants} from 'node:os'
import type {Duplex, Writable} from 'node:stream'

import {z} from 'zod'

import {ENV_KEY} from '../runtime/env-file.js'
import {decodePathParam, errorId, requestUrl, requestUser} from './api-route.js'
import {AppError} from './app-error.js'
import type {AppDynos} from './app-dynos.js'
import type {LogSink} from './log-sink.js'
import type {RunProcess} from './run-process.js'
import {encodeFrame, Frame, FrameParser} from './run-protocol.js'
import {TERM, TERMINAL_EOF, TtySize} from './run-terminal.js'

/** What a one-off run asks for: the command as argv (a Procfile type's name runs its command). */
export const RunRequest = z
  .object({
    command: z.array(z.string()).min(1, 'command needs at least one word'),
    env: z.record(z.string().regex(ENV_KEY, 'an environment variable name'), z.string()).optional(),
  })
  .strict()
export type RunRequest = z.infer<typeof RunRequest>

/** An attached run may ask for a terminal: `"tty": {"rows": 24, "cols": 80}`, and `"term": "xterm-256color"` with it. */
const AttachedRunRequest = RunRequest.extend({tty: TtySize.optional(), term: TERM.optional()})
  .strict()
  .refine((request) => request.term === undefined || request.tty !== undefined, {message: 'a terminal type goes with "tty"', path: ['term']})

/** Signals a client may send an attached run (what a terminal's keys and a resize produce). */
const CLIENT_SIGNALS = new Set(['SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'])

const PATH = /^\/apps\/([^/]+)\/dynos$/

/**
 * Serves `POST /apps/:app/dynos` with `Upgrade: dev-run`: an attached one-off run whose stdin,
 * stdout, stderr, signals and exit status travel as frames (run-protocol.ts) on the upgraded
 * connection. When the connection drops before the run ends, the run gets SIGHUP, then SIGKILL
 * after the stop grace (logged R16).
 */
export function runUpgradeHandler(deps: {dynosOf: (app: string) => Promise<AppDynos>; logFor: (app: string) => LogSink; graceMs: number}) {
  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Watching the connection comes first: a client may go while anything below waits.
    const session = new AttachedSession(socket, deps.graceMs)
    let app: string
    try {
      const path = requestUrl(req).pathname
      const match = PATH.exec(path)
      if (req.method !== 'POST' || !match || String(req.headers.upgrade).toLowerCase() !== 'dev-run') {
        throw new AppError(404, `no upgrade to ${String(req.headers.upgrade)} at ${req.method} ${path}; attached runs are POST /apps/:app/dynos with Upgrade: dev-run`)
      }
      app = decodePathParam(match[1]!)
    } catch (error) {
      refuse(socket, error)
      return
    }
    const user = requestUser(req)
    deps.dynosOf(app).then(
      (dynos) => {
        // Nothing is started for a client already gone (a run cut short may do more harm than none).
        if (session.clientGone) deps.logFor(app).append('agent', 'api', `Attached run by ${user} not started: the client went away first`)
        else session.begin(dynos, user, head)
      },
      (error: unknown) => refuse(socket, error),
    )
  }
}

/** Answers an upgrade request with a plain HTTP error and closes the connection. */
function refuse(socket: Duplex, error: unknown): void {
  const status = error instanceof AppError ? error.status : 500
  if (!(error instanceof AppError)) console.error(error)
  const body = `${JSON.stringify({id: errorId(status), message: error instanceof AppError ? error.message : 'internal error; see the agent log'})}\n`
  const answer = `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  socket.end(answer, () => socket.destroy())
}

/**
 * One attached run on its upgraded connection. Frames are handled one at a time, in order; the
 * connection is not read while one waits (the run starting, or its stdin full), so a client that
 * writes faster than the run reads is held back rather than filling the agent's memory.
 */
class AttachedSession {
  private readonly parser = new FrameParser()
  private readonly frames: {type: number; payload: Buffer}[] = []
  private dynos: AppDynos | undefined
  private user = 'unknown'
  private run: RunProcess | undefined
  private handling = false
  /** The exit frame is sent: nothing more is read. */
  private ended = false
  private gone = false
  private hungUp = false

  constructor(
    private readonly socket: Duplex,
    private readonly graceMs: number,
  ) {
    socket.on('error', () => {})
    // Nothing is read before the app is known to exist (begin).
    socket.pause()
    socket.on('data', (chunk: Buffer) => this.read(chunk))
    // The client's end of the stream means it is gone (its stdin ends with a frame, not with EOF);
    // upgraded sockets are half-open, so nothing would close ours otherwise.
    socket.once('end', () => socket.destroy())
    socket.once('close', () => {
      this.gone = true
      this.hangUp()
    })
  }

  get clientGone(): boolean {
    return this.gone
  }

  begin(dynos: AppDynos, user: string, head: Buffer): void {
    this.dynos = dynos
    this.user = user
    this.socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: dev-run\r\nConnection: Upgrade\r\n\r\n')
    this.read(head)
  }

  private read(chunk: Buffer): void {
    try {
      this.frames.push(...this.parser.push(chunk))
    } catch (error) {
      this.finish({error: (error as Error).message})
      return
    }
    this.handleFrames().catch((error: unknown) => {
      console.error(error)
      this.finish({error: 'internal error; see the agent log'})
    })
  }

  private async handleFrames(): Promise<void> {
    if (this.handling) return
    this.handling = true
    this.socket.pause()
    while (!this.ended && !this.gone && this.frames.length > 0) await this.handle(this.frames.shift()!)
    this.handling = false
    if (!this.ended && !this.gone) this.socket.resume()
  }

  private async handle({type, payload}: {type: number; payload: Buffer}): Promise<void> {
    const run = this.run
    if (run === undefined) {
      if (type !== Frame.request) this.finish({error: 'the first frame must be the run request'})
      else await this.start(payload)
      return
    }
    const stdin = run.child.stdin!
    if (type === Frame.stdin) {
      if (!stdin.write(payload)) await drained(stdin)
    } else if (type === Frame.stdinEnd) {
      // A terminal has no end of input, only its EOF character, which `script` passes on.
      if (run.terminal) stdin.write(TERMINAL_EOF)
      else stdin.end()
    } else if (type === Frame.signal && CLIENT_SIGNALS.has(payload.toString())) run.signal(payload.toString() as NodeJS.Signals)
    else if (type === Frame.resize) {
      const size = parseFrame(TtySize, payload, 'resize frame')
      if ('error' in size) this.finish(size)
      else await run.resize(size.value)
    }
  }

  private async start(payload: Buffer): Promise<void> {
    const request = parseFrame(AttachedRunRequest, payload, 'run request')
    if ('error' in request) {
      this.finish(request)
      return
    }
    let run: RunProcess
    try {
      const {tty, term, ...rest} = request.value
      run = (await this.dynos!.startRun({...rest, tty: tty && {...tty, term}, attach: true, user: this.user})).process
    } catch (error) {
      this.finish({error: error instanceof AppError ? error.message : 'internal error; see the agent log'})
      return
    }
    this.run = run
    const child = run.child
    child.stdin!.on('error', () => {})
    relay(child, this.socket, run.terminal)
    child.once('close', (code, signal) => this.finish({status: code ?? 128 + signalNumber(signal)}))
    // The client may have gone while the run started.
    if (this.gone) this.hangUp()
    // The client's next frames (a signal, a resize) are for the run's terminal once it is there.
    await run.ready()
  }

  /** The exit frame, then the connection closes (a run still going then gets its SIGHUP). */
  private finish(result: {status: number} | {error: string}): void {
    if (this.ended) return
    this.ended = true
    this.socket.end(encodeFrame(Frame.exit, JSON.stringify(result)), () => this.socket.destroy())
  }

  /** The client is gone: a run still going gets SIGHUP, and SIGKILL after the grace (R16). */
  private hangUp(): void {
    const run = this.run
    if (this.hungUp || run?.child.pid === undefined || run.child.exitCode !== null || run.child.signalCode !== null) return
    this.hungUp = true
    const dynos = this.dynos!
    dynos.runDisconnected(run)
    run.signal('SIGHUP')
    setTimeout(() => {
      if (run.alive()) {
        dynos.runLost(run)
        run.kill()
      }
    }, this.graceMs).unref()
  }
}

/** Resolves when `stream` takes writes again, or when it never will (the run is gone, or its stdin ended). */
function drained(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.writableEnded) return resolve()
    const done = () => {
      stream.off('drain', done)
      stream.off('close', done)
      resolve()
    }
    stream.once('drain', done)
    stream.once('close', done)
  })
}

/**
 * The run's stdout and stderr as frames (on a terminal, both are its one output: stdout); the run
 * waits while the client reads slowly. Once the client is gone the output is read and dropped, so
 * the run can end (and be seen to).
 */
function relay(child: ChildProcess, socket: Duplex, terminal: boolean): void {
  for (const [stream, type] of [
    [child.stdout!, Frame.stdout],
    [child.stderr!, terminal ? Frame.stdout : Frame.stderr],
  ] as const) {
    stream.on('data', (chunk: Buffer) => {
      if (!socket.writable) return
      if (!socket.write(encodeFrame(type, chunk))) {
        stream.pause()
        socket.once('drain', () => stream.resume())
      }
    })
    socket.once('close', () => stream.resume())
  }
}

/** A frame's JSON payload checked against `schema`, or the error that ends the session. */
function parseFrame<T>(schema: z.ZodType<T>, payload: Buffer, what: string): {value: T} | {error: string} {
  try {
    const parsed = schema.safeParse(JSON.parse(payload.toString()))
    if (parsed.success) return {value: parsed.data}
    return {error: `invalid ${what} at ${parsed.error.issues[0]!.path.join('.') || 'the top'}: ${parsed.error.issues[0]!.message}`}
  } catch (error) {
    return {error: `invalid ${what}: ${(error as Error).message}`}
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal === null ? 0 : (constants.signals[signal] ?? 0)
}
