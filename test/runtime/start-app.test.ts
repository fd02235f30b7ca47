import {createServer} from 'node:net'
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {Writable} from 'node:stream'
import {EventEmitter} from 'node:events'

import {describe, expect, it} from 'vitest'

import {MAX_LINE_BYTES} from '../../src/runtime/line-splitter.js'
import {startApp} from '../../src/runtime/start-app.js'
import {fixture, startInApp} from '../support/start-harness.js'
import {tempApp} from '../support/temp-app.js'

const emit = (mode: string, arg = '') => `node ${fixture('emit.js')} ${mode} ${arg}`.trim()
/** Keeps running until stopped. */
const idle = 'node -e "setInterval(() => {}, 1000)"'

/** The output lines of one process, without dev's own lifecycle lines. */
function outputOf(lines: string[], name: string): string[] {
  return lines
    .filter((line) => line.startsWith(`${name} `))
    .map((line) => line.slice(line.indexOf('| ') + 2))
    .filter((text) => !/^(started with pid|exited with code|terminated by)/.test(text))
}

describe('dev start: ports and environment', () => {
  it('gives instance N of the type at index I the port base + 100 × I + (N - 1), and PS/DYNO', async () => {
    const run = await startInApp(
      {Procfile: `web: ${emit('env', 'PORT,PS,DYNO')}; sleep 5\nworker: ${emit('env', 'PORT,PS,DYNO')}; sleep 5\nclock: ${emit('env', 'PORT')}; sleep 5\n`},
      {formation: 'web=2,worker=3,clock=0'},
    )
    for (const name of ['web.1', 'web.2', 'worker.1', 'worker.2', 'worker.3']) await run.waitFor(new RegExp(`^${name.replace('.', '\\.')} +\\| \\{`))
    run.signals.emit('SIGTERM')
    expect(await run.status).toBe(143)
    const env = (name: string) => JSON.parse(outputOf(run.lines(), name)[0]!)
    expect(env('web.1')).toEqual({PORT: '5000', PS: 'web.1', DYNO: 'web.1'})
    expect(env('web.2')).toEqual({PORT: '5001', PS: 'web.2', DYNO: 'web.2'})
    expect(env('worker.1')).toEqual({PORT: '5100', PS: 'worker.1', DYNO: 'worker.1'})
    expect(env('worker.3')).toEqual({PORT: '5102', PS: 'worker.3', DYNO: 'worker.3'})
    expect(run.lines().some((line) => line.startsWith('clock.1'))).toBe(false)
  })

  it('keeps the Procfile port of a type started alone', async () => {
    const run = await startInApp({Procfile: `web: sleep 5\nworker: ${emit('env', 'PORT')}\n`}, {only: ['worker']})
    expect(await run.status).toBe(0)
    expect(outputOf(run.lines(), 'worker.1')).toEqual(['{"PORT":"5100"}'])
  })

  it('takes the base port from --port, else PORT in the env files, else the shell, else 5000', async () => {
    const procfile = {Procfile: `a: sleep 0.2\nb: ${emit('env', 'PORT')}\n`}
    const portOf = async (files: Record<string, string>, options: {port?: number}, env: NodeJS.ProcessEnv) => {
      const run = await startInApp(files, {...options, only: ['b']}, env)
      await run.status
      return JSON.parse(outputOf(run.lines(), 'b.1')[0]!).PORT as string
    }
    expect(await portOf({...procfile, '.env': 'PORT=4300\n'}, {port: 4400}, {PORT: '4100'})).toBe('4500')
    expect(await portOf({...procfile, '.env': 'PORT=4300\n'}, {}, {PORT: '4100'})).toBe('4400')
    expect(await portOf(procfile, {}, {PORT: '4100'})).toBe('4200')
    expect(await portOf(procfile, {}, {})).toBe('5100')
  })

  it('layers the environment: shell < env files < PORT/PS/DYNO, and sets PYTHONUNBUFFERED unless given', async () => {
    const files = {Procfile: `a: ${emit('env', 'FROM_SHELL,SHARED,PS,PYTHONUNBUFFERED')}\n`, '.env': 'SHARED=file\nPS=from-file\n'}
    const run = await startInApp(files, {}, {FROM_SHELL: 'shell', SHARED: 'shell'})
    await run.status
    expect(JSON.parse(outputOf(run.lines(), 'a.1')[0]!)).toEqual({FROM_SHELL: 'shell', SHARED: 'file', PS: 'a.1', PYTHONUNBUFFERED: '1'})
    const own = await startInApp({Procfile: `a: ${emit('env', 'PYTHONUNBUFFERED')}\n`, '.env': 'PYTHONUNBUFFERED=0\n'})
    await own.status
    expect(outputOf(own.lines(), 'a.1')).toEqual(['{"PYTHONUNBUFFERED":"0"}'])
  })

  it('runs commands through /bin/sh in the app root', async () => {
    const run = await startInApp({Procfile: 'a: pwd && echo "$((1 + 2))" | cat\n'})
    await run.status
    expect(outputOf(run.lines(), 'a.1')).toEqual([run.root, '3'])
  })

  it('warns when a port is already taken by another program', async () => {
    const server = createServer().listen(0)
    await new Promise((resolve) => server.once('listening', resolve))
    const port = (server.address() as {port: number}).port
    try {
      const run = await startInApp({Procfile: 'web: sleep 0.1\n'}, {port})
      await run.status
      expect(run.lines()).toContain(`system | warning: port ${port} of web.1 is already in use by another program; web.1 may fail to bind it`)
    } finally {
      server.close()
    }
  })

  it('refuses a formation whose ports would pass 65535', async () => {
    const run = startInApp({Procfile: 'web: sleep 1\nworker: sleep 1\n'}, {port: 65_500})
    await expect((await run).status).rejects.toThrow('worker.1 would get port 65600, above 65535; pass a lower --port')
  })

  it('refuses to start with a broken env file, and says where', async () => {
    const run = startInApp({Procfile: 'web: sleep 1\n', '.env': 'GOOD=1\nbad line\n'})
    await expect((await run).status).rejects.toThrow(/\.env:2: expected KEY=VALUE: no "=" after the key/)
  })
})

describe('dev start: output', () => {
  it('prefixes every line with the name padded to the longest name.N (at least "system")', async () => {
    const run = await startInApp({Procfile: `web: echo hi\nlongworker: sleep 1\n`})
    await run.status
    expect(run.lines()).toContain('web.1        | hi')
    expect(run.lines()).toContain('longworker.1 | terminated by SIGTERM')
    const short = await startInApp({Procfile: 'a: echo hi\n'})
    await short.status
    expect(short.lines()).toContain('a.1    | hi')
  })

  it('prints HH:MM:SS before the name unless --no-timestamp', async () => {
    const run = await startInApp({Procfile: 'a: echo hi\n'}, {timestamp: true})
    await run.status
    expect(run.lines()).toContainEqual(expect.stringMatching(/^\d\d:\d\d:\d\d a\.1    \| hi$/))
  })

  it('colours only the prefix, one colour per type, when colour is on', async () => {
    const run = await startInApp({Procfile: 'a: echo plain; sleep 0.3\nb: echo plain; sleep 5\n'}, {colour: true})
    await run.status
    const lines = run.lines()
    const a = lines.find((line) => line.includes('a.1') && line.endsWith('plain'))!
    const b = lines.find((line) => line.includes('b.1') && line.endsWith('plain'))!
    expect(a).toBe('\u001B[36ma.1    |\u001B[39m plain')
    expect(b).toBe('\u001B[33mb.1    |\u001B[39m plain')
  })

  it('keeps blank lines', async () => {
    const run = await startInApp({Procfile: `a: ${emit('blank')}\n`})
    await run.status
    expect(outputOf(run.lines(), 'a.1')).toEqual(['before', '', '', 'after'])
  })

  it('keeps stdout and stderr in the order they were written', async () => {
    const run = await startInApp({Procfile: `b: ${emit('interleave')}\n`})
    await run.status
    expect(outputOf(run.lines(), 'b.1')).toEqual(Array.from({length: 50}, (_, i) => `line ${i}`))
  })

  it('writes a 2 MB line as lines of at most MAX_LINE_BYTES, every byte kept', async () => {
    const run = await startInApp({Procfile: `a: ${emit('big', '2000000')}\n`})
    await run.status
    const big = run.lines().flatMap((line) => (line.startsWith('a.1    | x') ? [line.slice('a.1    | '.length)] : []))
    expect(big).toHaveLength(Math.ceil(2_000_000 / MAX_LINE_BYTES))
    expect(big.every((line) => line.length <= MAX_LINE_BYTES)).toBe(true)
    expect(big.join('')).toBe('x'.repeat(2_000_000))
  })

  it('passes invalid UTF-8 bytes through unchanged', async () => {
    const run = await startInApp({Procfile: `a: ${emit('binary')}\n`})
    await run.status
    const expected = Buffer.concat([Buffer.from('a.1    | '), Buffer.from([0xff, 0xfe, 0x03, 0x41, 0x0a]), Buffer.from('a.1    | '), Buffer.from([0xc3, 0x28, 0x0a])])
    expect(run.bytes().includes(expected)).toBe(true)
  })

  it('writes a partial line as its own line when the process exits', async () => {
    const run = await startInApp({Procfile: `a: ${emit('partial')}\n`})
    await run.status
    expect(run.lines()).toEqual(['a.1    | started with pid ' + run.lines()[0]!.split('pid ')[1], 'a.1    | no newline at the end', 'a.1    | exited with code 0'])
  })

  it('stops reading a process while stdout is slow, so memory stays bounded', async () => {
    const root = await tempApp({Procfile: 'flood: yes | head -c 50000000; echo done\n'})
    let accepted = 0
    // A terminal that takes 50 ms per write.
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _encoding, callback) {
        accepted += chunk.length
        setTimeout(callback, 50)
      },
    })
    const signals = new EventEmitter()
    const status = startApp({root, timeout: 5, timestamp: false, colour: false, restart: 'never'}, {stdout: slow, signals, env: {PATH: process.env.PATH}, cwd: root})
    await new Promise((resolve) => setTimeout(resolve, 1500))
    // Without back-pressure the 50 MB would pile up in the stream's buffer within a second.
    expect(slow.writableLength).toBeLessThan(1_000_000)
    expect(accepted).toBeLessThan(25_000_000)
    signals.emit('SIGTERM')
    expect(await status).toBe(143)
  })

  it('writes a partial line after 100 ms without output, and the rest as the next line', async () => {
    const run = await startInApp({Procfile: `a: ${emit('partial-then-more')}\n`})
    await run.status
    expect(outputOf(run.lines(), 'a.1')).toEqual(['first half', ' second half'])
  })
})

describe('dev start: stopping and exit status', () => {
  it('stops everything when one process exits, with its exit code (Foreman B17)', async () => {
    const run = await startInApp({Procfile: 'a: sleep 0.3; exit 3\nb: sleep 30\n'})
    const started = Date.now()
    expect(await run.status).toBe(3)
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(run.lines()).toEqual(
      expect.arrayContaining(['a.1    | exited with code 3', 'system | sending SIGTERM to all processes', 'b.1    | terminated by SIGTERM']),
    )
  })

  it('exits 128 + N when the process that stopped the app was killed by signal N', async () => {
    const run = await startInApp({Procfile: 'a: kill -USR1 $$; sleep 1\nb: sleep 30\n'})
    expect(await run.status).toBe(128 + 10)
    expect(run.lines()).toContain('a.1    | terminated by SIGUSR1')
  })

  it('exits 130, 143, 129 and 131 after SIGINT, SIGTERM, SIGHUP and SIGQUIT', async () => {
    for (const [signal, status] of [
      ['SIGINT', 130],
      ['SIGTERM', 143],
      ['SIGHUP', 129],
      ['SIGQUIT', 131],
    ] as const) {
      const run = await startInApp({Procfile: `web: ${idle}\n`})
      await run.waitFor(/started with pid/)
      run.signals.emit(signal)
      expect(await run.status).toBe(status)
    }
  })

  it('counts the processes it has to SIGKILL', async () => {
    const stubborn = `trap '' TERM; echo ready; while true; do sleep 0.1; done`
    const run = await startInApp({Procfile: `a: ${stubborn}\nb: ${stubborn}\n`}, {timeout: 0.5})
    await run.waitForCount(/ready/, 2)
    run.signals.emit('SIGTERM')
    await run.status
    expect(run.lines()).toContain('system | sending SIGKILL to 2 processes that did not stop in 0.5s')
  })

  it('sends SIGKILL to processes that ignore SIGTERM, after the timeout', async () => {
    const run = await startInApp({Procfile: `stubborn: trap '' TERM; echo ready; while true; do sleep 0.1; done\nok: ${idle}\n`}, {timeout: 1})
    await run.waitFor(/stubborn\.1 +\| ready/)
    const started = Date.now()
    run.signals.emit('SIGTERM')
    expect(await run.status).toBe(143)
    expect(Date.now() - started).toBeGreaterThanOrEqual(900)
    expect(run.lines()).toEqual(
      expect.arrayContaining(['system     | sending SIGKILL to 1 process that did not stop in 1s', 'stubborn.1 | terminated by SIGKILL']),
    )
  })

  it('a second Ctrl-C kills at once', async () => {
    const run = await startInApp({Procfile: `stubborn: trap '' TERM INT; echo ready; while true; do sleep 0.1; done\n`}, {timeout: 30})
    await run.waitFor(/ready/)
    run.signals.emit('SIGINT')
    await run.waitFor(/sending SIGTERM/)
    const started = Date.now()
    run.signals.emit('SIGINT')
    expect(await run.status).toBe(130)
    expect(Date.now() - started).toBeLessThan(5000)
    expect(run.lines()).toContain('system     | sending SIGKILL to all processes')
  })

  it('prints what a process writes after another one has stopped the app', async () => {
    const run = await startInApp({Procfile: `a: sleep 0.5; exit 1\nb: trap 'echo cleaning up; exit 0' TERM; while true; do sleep 0.05; done\n`})
    expect(await run.status).toBe(1)
    expect(outputOf(run.lines(), 'b.1')).toContain('cleaning up')
  })
})

describe('dev start --restart', () => {
  it('restarts a crashing process at once, then after 1 s, 2 s …, logging each attempt', async () => {
    const root = await startInApp({Procfile: `crash: echo run; exit 4\n`}, {restart: 'on-failure'})
    await root.waitFor(/restarting in 2s \(attempt 3\)/, 8000)
    root.signals.emit('SIGTERM')
    expect(await root.status).toBe(143)
    const log = root.lines().filter((line) => /restarting/.test(line))
    expect(log.slice(0, 3)).toEqual(['crash.1 | restarting (attempt 1)', 'crash.1 | restarting in 1s (attempt 2)', 'crash.1 | restarting in 2s (attempt 3)'])
  })

  it('leaves a process that exits 0 stopped ("completed") with on-failure, and ends when all have', async () => {
    const run = await startInApp({Procfile: 'once: echo done\nlater: sleep 0.3\n'}, {restart: 'on-failure'})
    expect(await run.status).toBe(0)
    expect(run.lines()).toEqual(expect.arrayContaining(['once.1  | completed', 'later.1 | completed']))
  })

  it('restarts a process that exits 0 with always', async () => {
    const run = await startInApp({Procfile: 'tick: echo tick\n'}, {restart: 'always'})
    await run.waitFor(/attempt 2/)
    run.signals.emit('SIGTERM')
    await run.status
    expect(outputOf(run.lines(), 'tick.1').filter((line) => line === 'tick').length).toBeGreaterThanOrEqual(2)
  })
})

describe('dev start --watch', () => {
  it('restarts all processes when a file changes, and ignores node_modules, logs and .gitignore matches', async () => {
    const run = await startInApp({Procfile: `web: ${idle}\n`, '.gitignore': 'tmp/\n', 'tmp/.keep': '', 'node_modules/.keep': ''}, {watch: []})
    await run.waitFor(/started with pid/)
    await new Promise((resolve) => setTimeout(resolve, 300))
    await writeFile(join(run.root, 'node_modules', 'x.js'), '1')
    await writeFile(join(run.root, 'tmp', 'cache'), '1')
    await writeFile(join(run.root, 'server.log'), '1')
    for (const dir of ['.dev', 'dist', 'build', 'coverage', '.git']) {
      await mkdir(join(run.root, dir), {recursive: true})
      await writeFile(join(run.root, dir, 'x'), '1')
    }
    for (const file of ['.app.js.swp', 'app.js~', '.#app.js', '4913']) await writeFile(join(run.root, file), '1')
    await new Promise((resolve) => setTimeout(resolve, 800))
    expect(run.lines().filter((line) => /changed/.test(line))).toEqual([])
    await writeFile(join(run.root, 'app.js'), 'changed')
    await run.waitFor(/app\.js changed; restarting all processes/)
    await run.waitForCount(/started with pid/, 2)
    run.signals.emit('SIGTERM')
    await run.status
    expect(run.lines().filter((line) => /started with pid/.test(line))).toHaveLength(2)
  })

  it('reloads the Procfile when it changes', async () => {
    const run = await startInApp({Procfile: `web: ${idle}\n`}, {watch: []})
    await run.waitFor(/started with pid/)
    await new Promise((resolve) => setTimeout(resolve, 300))
    await writeFile(join(run.root, 'Procfile'), `web: ${idle}\nworker: ${idle}\n`)
    await run.waitFor(/worker\.1 +\| started with pid/)
    run.signals.emit('SIGTERM')
    await run.status
    expect(run.lines()).toContainEqual(expect.stringMatching(/Procfile changed; reloading and restarting all processes/))
  })

  it('re-reads the env files when one changes, and gives the processes the new values', async () => {
    const run = await startInApp({Procfile: `web: echo "mode=$MODE"; ${idle}\n`, '.env': 'MODE=one\n'}, {watch: []})
    await run.waitFor(/mode=one/)
    await new Promise((resolve) => setTimeout(resolve, 300))
    await writeFile(join(run.root, '.env'), 'MODE=two\n')
    await run.waitFor(/mode=two/)
    run.signals.emit('SIGTERM')
    await run.status
    expect(run.lines()).toContainEqual(expect.stringMatching(/\.env changed; reloading and restarting all processes/))
  })

  it('keeps the running processes when a changed Procfile has an error', async () => {
    const run = await startInApp({Procfile: `web: ${idle}\n`}, {watch: []})
    await run.waitFor(/started with pid/)
    await new Promise((resolve) => setTimeout(resolve, 300))
    await writeFile(join(run.root, 'Procfile'), `web: ${idle}\nbroken line\n`)
    await run.waitFor(/Procfile:2: expected NAME: COMMAND/)
    run.signals.emit('SIGTERM')
    await run.status
    expect(run.lines().filter((line) => /started with pid/.test(line))).toHaveLength(1)
    expect(run.lines()).toContainEqual(expect.stringMatching(/Procfile changed but cannot be used; keeping the running processes:/))
  })

  it('warns about a watched path that does not exist', async () => {
    const run = await startInApp({Procfile: `web: ${idle}\n`}, {watch: ['nowhere']})
    await run.waitFor(/started with pid/)
    run.signals.emit('SIGTERM')
    await run.status
    expect(run.lines()).toContain('system | warning: nowhere does not exist; nothing there is watched until it does')
  })

  it('pauses watching after more than 10 restarts in a minute', async () => {
    const run = await startInApp({Procfile: `web: ${idle}\n`}, {watch: [], timeout: 1})
    await run.waitFor(/started with pid/)
    await new Promise((resolve) => setTimeout(resolve, 300))
    for (let i = 0; i < 11; i++) {
      await writeFile(join(run.root, 'app.js'), String(i))
      await new Promise((resolve) => setTimeout(resolve, 450))
    }
    await run.waitFor(/watching paused/)
    await run.waitForCount(/restarting all processes/, 10)
    await new Promise((resolve) => setTimeout(resolve, 500))
    run.signals.emit('SIGTERM')
    await run.status
    expect(run.lines().filter((line) => /restarting all processes/.test(line))).toHaveLength(10)
  }, 30_000)

  it('keeps running after a crash, and restarts it on the next change', async () => {
    const run = await startInApp({Procfile: `web: test -f fixed || exit 1; ${idle}\n`}, {watch: []})
    await run.waitFor(/waiting for a file change/)
    await writeFile(join(run.root, 'fixed'), '')
    await run.waitFor(/fixed changed/)
    await run.waitForCount(/started with pid/, 2)
    run.signals.emit('SIGTERM')
    expect(await run.status).toBe(143)
    expect(run.lines().filter((line) => /started with pid/.test(line))).toHaveLength(2)
  })
})
