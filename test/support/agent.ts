import {spawn, type ChildProcess} from 'node:child_process'
import {request} from 'node:http'
import {cp, mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {gzipSync} from 'node:zlib'

import {Header} from 'tar'

import {buildSlug} from '../../src/slug/slug-build.js'

import {afterEach} from 'vitest'

import {projectRoot} from './run-bin.js'
import {tempApp} from './temp-app.js'

export interface AgentCallResult {
  status: number
  json: any
  /** The body as it came (NDJSON streams, say); not enumerable, so results compare by status and json. */
  readonly text: string
}

/** A dyno as GET /apps/:app/dynos lists it. */
export interface AgentDyno {
  name: string
  type: string
  state: string
  release: string
  port: number
  pid: number | null
  restarts: number
}

/** True once there are dynos and every one is up. */
export const allUp = (dynos: AgentDyno[]) => dynos.length > 0 && dynos.every((dyno) => dyno.state === 'up')

const running: ChildProcess[] = []
/** Each agent stops as a host's would (its dynos with it), and the test waits for that. */
afterEach(async () => {
  await Promise.all(
    running.splice(0).map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      const late = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(late)
    }),
  )
}, 30_000)

/** Agents started by this test file, so each gets ports of its own. */
let agentsStarted = 0

/**
 * Settings for test agents: short timeouts, and a port range of their own (test files run in
 * parallel, one per vitest worker) so two agents never hand out the same port.
 */
export function testAgentSettings(): Record<string, unknown> {
  const worker = Number(process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? 1) % 8
  const base = 20_000 + worker * 1000 + (agentsStarted++ % 10) * 100
  return {
    dyno_port_range: [base, base + 99],
    stop_grace_seconds: 3,
    boot_timeout_seconds: 5,
    deploy_timeout_seconds: 10,
    restart_backoff: {initial_seconds: 0.2, max_seconds: 1, reset_after_seconds: 60},
    drain_timeout_seconds: 2,
    router_port: 0,
    router_host: '127.0.0.1',
  }
}

/** Starts the bundled agent (dist/agent.cjs) as a real daemon on a fresh DEV_AGENT_HOME (or `home`). */
export async function startAgent(options: {home?: string; settings?: Record<string, unknown>; args?: string[]} = {}): Promise<{
  home: string
  child: ChildProcess
  stderr: () => string
  call: (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<AgentCallResult>
  /** Where the agent's router takes HTTP requests (on 127.0.0.1). */
  routerPort: number
}> {
  const home = options.home ?? join(await tempApp({}), 'agent-home')
  await mkdir(home, {recursive: true, mode: 0o700})
  if (options.home === undefined || options.settings !== undefined) {
    await writeFile(join(home, 'agent.json'), JSON.stringify({...testAgentSettings(), ...options.settings}))
  }
  let stderr = ''
  const child = spawn(process.execPath, [join(projectRoot, 'dist/agent.cjs'), 'daemon', ...(options.args ?? [])], {env: {...process.env, DEV_AGENT_HOME: home}, stdio: ['ignore', 'ignore', 'pipe']})
  running.push(child)
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
      if (stderr.includes('listening')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`agent exited ${code}: ${stderr}`)))
  })
  // An agent that dies by itself during a test is a bug: show why.
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGTERM' && signal !== 'SIGKILL') process.stderr.write(`the agent exited (${code ?? signal}):\n${stderr}\n`)
  })
  const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    new Promise<AgentCallResult>((resolve, reject) => {
      const req = request({socketPath: join(home, 'agent.sock'), method, path, headers: {'content-type': 'application/json', 'dev-user': 'ann', ...headers}}, (res) => {
        let text = ''
        res.on('data', (chunk: Buffer) => (text += chunk.toString()))
        res.on('end', () => resolve(Object.defineProperty({status: res.statusCode!, json: jsonOrText(text)}, 'text', {value: text, enumerable: false}) as AgentCallResult))
      })
      req.on('error', reject)
      req.end(body === undefined ? undefined : Buffer.isBuffer(body) || typeof body === 'string' ? body : JSON.stringify(body))
    })
  const routerPort = Number(/router on port (\d+)/.exec(stderr)?.[1])
  return {home, child, stderr: () => stderr, call, routerPort}
}


/** A slug of fixtures/agent-app (a web server and a worker), built with dev's own build. */
/** A gzipped tar whose one entry climbs out of the extraction directory. */
export function hostileSlug(): Buffer {
  const block = Buffer.alloc(512)
  new Header({path: '../../escaped.txt', type: 'File', mode: 0o644, size: 1, mtime: new Date(0)}).encode(block)
  return gzipSync(Buffer.concat([block, Buffer.from('x'), Buffer.alloc(511), Buffer.alloc(1024)]))
}

export async function agentAppSlug(): Promise<{sha256: string; bytes: Buffer}> {
  const root = await tempApp({})
  await cp(join(projectRoot, 'fixtures/agent-app'), root, {recursive: true})
  const {sha256} = await buildSlug({root, secrets: []})
  return {sha256, bytes: await readFile(join(root, '.dev/slugs', `${sha256}.tgz`))}
}

/**
 * Waits until the agent has recorded `count` running dynos of `app` in dynos.json (it writes the
 * record just after a dyno starts): only then can a kill -9 of the agent leave them adoptable.
 */
export async function untilRecorded(home: string, app: string, count: number): Promise<void> {
  const recorded = async () => {
    const text = await readFile(join(home, 'apps', app, 'dynos.json'), 'utf8').catch(() => '[]')
    try {
      return (JSON.parse(text) as {pid?: number}[]).filter((record) => record.pid !== undefined).length
    } catch {
      return 0
    }
  }
  await eventually(recorded, (found) => found === count)
}

/** Polls `probe` until `done` says yes (10 s at most). */
export async function eventually<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (done(value) || Date.now() > deadline) return value
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

function jsonOrText(text: string): unknown {
  try {
    return text === '' ? undefined : JSON.parse(text)
  } catch {
    return text
  }
}

/** An attached one-off run over the agent socket (Upgrade: dev-run), driven frame by frame. */
export async function attachedRun(home: string, app: string) {
  const {connect} = await import('node:net')
  const {encodeFrame, Frame, FrameParser} = await import('../../src/agent/run-protocol.js')
  const socket = connect(join(home, 'agent.sock'))
  socket.write(`POST /apps/${app}/dynos HTTP/1.1\r\nHost: agent\r\nConnection: Upgrade\r\nUpgrade: dev-run\r\nDev-User: ann\r\n\r\n`)
  const parser = new FrameParser()
  let head = ''
  let upgraded = false
  const out = {stdout: '', stderr: '', exit: undefined as undefined | {status?: number; error?: string}, refusal: ''}
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  socket.on('error', () => {})
  socket.on('data', (chunk: Buffer) => {
    if (!upgraded) {
      head += chunk.toString('latin1')
      const end = head.indexOf('\r\n\r\n')
      if (end === -1) return
      if (!head.startsWith('HTTP/1.1 101')) {
        out.refusal = head
        return
      }
      upgraded = true
      chunk = Buffer.from(head.slice(end + 4), 'latin1')
    }
    for (const frame of parser.push(chunk)) {
      if (frame.type === Frame.stdout) out.stdout += frame.payload.toString()
      else if (frame.type === Frame.stderr) out.stderr += frame.payload.toString()
      else if (frame.type === Frame.exit) out.exit = JSON.parse(frame.payload.toString())
    }
  })
  return {
    out,
    closed,
    socket,
    request: (request: unknown) => socket.write(encodeFrame(Frame.request, JSON.stringify(request))),
    stdin: (text: string) => socket.write(encodeFrame(Frame.stdin, text)),
    stdinEnd: () => socket.write(encodeFrame(Frame.stdinEnd)),
    signal: (name: string) => socket.write(encodeFrame(Frame.signal, name)),
  }
}
