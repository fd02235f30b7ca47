import {spawn, type ChildProcess} from 'node:child_process'

import {projectRoot} from './run-bin.js'

export interface LiveBin {
  child: ChildProcess
  stdout(): string
  stderr(): string
  /** Resolves once stdout holds a line matching `pattern`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>
  /** Resolves to the exit status (128 + N when killed by signal N). */
  status: Promise<number>
}

/** Starts the real `dev` executable in the background, as a user's shell would. */
export function spawnBin(args: string[], options: {cwd?: string; env?: NodeJS.ProcessEnv; stdin?: string} = {}): LiveBin {
  const env: NodeJS.ProcessEnv = {...process.env, NO_COLOR: '1'}
  delete env.FORCE_COLOR
  delete env.DEBUG
  Object.assign(env, options.env)
  const child = spawn(process.execPath, [`${projectRoot}bin/run.js`, ...args], {cwd: options.cwd ?? projectRoot, env, stdio: ['pipe', 'pipe', 'pipe']})
  if (options.stdin !== undefined) child.stdin!.end(options.stdin)
  else child.stdin!.end()
  let out = ''
  let err = ''
  const waiters: {pattern: RegExp; resolve: () => void}[] = []
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString()
    for (const waiter of [...waiters]) {
      if (waiter.pattern.test(out)) {
        waiters.splice(waiters.indexOf(waiter), 1)
        waiter.resolve()
      }
    }
  })
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()))
  const status = new Promise<number>((resolve) => {
    child.once('close', (code, signal) => resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : 0)))
  })
  return {
    child,
    status,
    stdout: () => out,
    stderr: () => err,
    waitFor(pattern, timeoutMs = 15_000) {
      if (pattern.test(out)) return Promise.resolve()
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no match for ${pattern}; stdout:\n${out}\nstderr:\n${err}`)), timeoutMs)
        waiters.push({pattern, resolve: () => (clearTimeout(timer), resolve())})
      })
    },
  }
}
