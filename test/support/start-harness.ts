import {EventEmitter} from 'node:events'
import {PassThrough} from 'node:stream'
import {fileURLToPath} from 'node:url'

import {startApp, type StartOptions} from '../../src/runtime/start-app.js'
import {tempApp} from './temp-app.js'

/** Absolute path of a test fixture script. */
export const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))

export interface StartRun {
  root: string
  signals: EventEmitter
  /** Everything written so far, as bytes. */
  bytes(): Buffer
  /** Everything written so far, as text lines. */
  lines(): string[]
  /** Resolves to dev start's exit status. */
  status: Promise<number>
  /** Resolves once a line matching `pattern` has been written. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>
  /** Resolves once `count` lines matching `pattern` have been written. */
  waitForCount(pattern: RegExp, count: number, timeoutMs?: number): Promise<void>
}

/** Runs startApp (the core of `dev start`) on a temporary app, in this process. */
export async function startInApp(files: Record<string, string>, options: Partial<StartOptions> = {}, env: NodeJS.ProcessEnv = {}): Promise<StartRun> {
  const root = options.root ?? (await tempApp(files))
  const signals = new EventEmitter()
  const stdout = new PassThrough()
  const chunks: Buffer[] = []
  const waiters: {pattern: RegExp; count: number; resolve: (line: string) => void}[] = []
  const text = () => Buffer.concat(chunks).toString('utf8')
  const matches = (pattern: RegExp) => text().split('\n').filter((line) => pattern.test(line))
  stdout.on('data', (chunk: Buffer) => {
    chunks.push(chunk)
    for (const waiter of [...waiters]) {
      const found = matches(waiter.pattern)
      if (found.length >= waiter.count) {
        waiters.splice(waiters.indexOf(waiter), 1)
        waiter.resolve(found[0]!)
      }
    }
  })
  const waitForCount = (pattern: RegExp, count: number, timeoutMs = 10_000) => {
    const found = matches(pattern)
    if (found.length >= count) return Promise.resolve(found[0]!)
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`fewer than ${count} lines matched ${pattern} in:\n${text()}`)), timeoutMs)
      waiters.push({pattern, count, resolve: (line) => (clearTimeout(timer), resolve(line))})
    })
  }
  const status = startApp(
    {root, timeout: 5, timestamp: false, colour: false, restart: 'never', ...options},
    {stdout, signals, env: {PATH: process.env.PATH, ...env}, cwd: root},
  )
  return {
    root,
    signals,
    status,
    bytes: () => Buffer.concat(chunks),
    lines: () => text().split('\n').filter((line, index, all) => line !== '' || index < all.length - 1),
    waitFor: (pattern, timeoutMs) => waitForCount(pattern, 1, timeoutMs),
    waitForCount: async (pattern, count, timeoutMs) => {
      await waitForCount(pattern, count, timeoutMs)
    },
  }
}
