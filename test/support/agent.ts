import {spawn, type ChildProcess} from 'node:child_process'
import {request} from 'node:http'
import {join} from 'node:path'

import {afterEach} from 'vitest'

import {projectRoot} from './run-bin.js'
import {tempApp} from './temp-app.js'

export interface AgentCallResult {
  status: number
  json: any
}

const running: ChildProcess[] = []
afterEach(() => {
  for (const child of running.splice(0)) child.kill('SIGTERM')
})

/** Starts the bundled agent (dist/agent.cjs) as a real daemon on a fresh DEV_AGENT_HOME. */
export async function startAgent(): Promise<{
  home: string
  call: (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<AgentCallResult>
}> {
  const home = join(await tempApp({}), 'agent-home')
  const child = spawn(process.execPath, [join(projectRoot, 'dist/agent.cjs'), 'daemon'], {env: {...process.env, DEV_AGENT_HOME: home}, stdio: ['ignore', 'ignore', 'pipe']})
  running.push(child)
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => chunk.toString().includes('listening') && resolve())
    child.once('exit', (code) => reject(new Error(`agent exited ${code}`)))
  })
  const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    new Promise<AgentCallResult>((resolve, reject) => {
      const req = request({socketPath: join(home, 'agent.sock'), method, path, headers: {'content-type': 'application/json', 'dev-user': 'ann', ...headers}}, (res) => {
        let text = ''
        res.on('data', (chunk: Buffer) => (text += chunk.toString()))
        res.on('end', () => resolve({status: res.statusCode!, json: text === '' ? undefined : JSON.parse(text)}))
      })
      req.on('error', reject)
      req.end(body === undefined ? undefined : Buffer.isBuffer(body) || typeof body === 'string' ? body : JSON.stringify(body))
    })
  return {home, call}
}

