import {execFileSync, spawn} from 'node:child_process'
import {createServer} from 'node:net'

import {describe, expect, it} from 'vitest'

import {liveGroupMembers, processAlive} from '../support/processes.js'
import {runBin, projectRoot} from '../support/run-bin.js'
import {spawnBin} from '../support/spawn-bin.js'
import {tempApp} from '../support/temp-app.js'

const startedPids = (stdout: string) => [...stdout.matchAll(/started with pid (\d+)/g)].map((match) => Number(match[1]))

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const {port} = server.address() as {port: number}
  await new Promise((resolve) => server.close(resolve))
  return port
}

describe('dev start (the executable)', () => {
  it('serves the sample app on its PORT', async () => {
    const port = await freePort()
    const dev = spawnBin(['start', '-d', 'fixtures/node-web', '-p', String(port), 'web'])
    await dev.waitFor(/listening on/)
    const body = await (await fetch(`http://127.0.0.1:${port}/`)).json()
    expect(body).toMatchObject({ok: true, dyno: 'web.1', port})
    await dev.waitFor(/web\.1 +\| GET \//)
    dev.child.kill('SIGTERM')
    expect(await dev.status).toBe(143)
    expect(dev.stdout()).toMatch(/web\.1 +\| SIGTERM received, closing\n.*web\.1 +\| exited with code 0/)
  })

  it('leaves no process of the app behind after SIGTERM, grandchildren included', async () => {
    const app = await tempApp({
      Procfile: 'web: sleep 60 & echo child $!; sleep 60\nworker: sh -c "sleep 60 & echo child \\$!; wait" & wait\n',
    })
    const dev = spawnBin(['start', '-d', app, '-p', String(await freePort())])
    await dev.waitFor(/web\.1 +\| child \d+[\s\S]*worker\.1 +\| child \d+|worker\.1 +\| child \d+[\s\S]*web\.1 +\| child \d+/)
    const groups = startedPids(dev.stdout())
    const grandchildren = [...dev.stdout().matchAll(/child (\d+)/g)].map((match) => Number(match[1]))
    expect(groups).toHaveLength(2)
    expect(grandchildren.every(processAlive)).toBe(true)
    dev.child.kill('SIGTERM')
    expect(await dev.status).toBe(143)
    expect(dev.stdout()).toMatch(/system +\| sending SIGTERM to all processes/)
    for (const pgid of groups) expect(liveGroupMembers(pgid)).toEqual([])
    expect(grandchildren.filter(processAlive)).toEqual([])
  })

  it('exits with the code of the process that stopped the app', async () => {
    const app = await tempApp({Procfile: 'a: sleep 0.2; exit 3\nb: sleep 60\n'})
    const result = runBin(['start', '-d', app, '-p', String(await freePort())])
    expect(result.status).toBe(3)
    expect(result.stdout).toMatch(/a\.1 +\| exited with code 3/)
  })

  it('kills at once on a second Ctrl-C, exit 130', async () => {
    const app = await tempApp({Procfile: `stubborn: trap '' TERM; echo ready; while true; do sleep 0.1; done\n`})
    const dev = spawnBin(['start', '-d', app, '-t', '60', '-p', String(await freePort())])
    await dev.waitFor(/ready/)
    const pgid = startedPids(dev.stdout())[0]!
    dev.child.kill('SIGINT')
    await dev.waitFor(/sending SIGTERM to all processes/)
    dev.child.kill('SIGINT')
    expect(await dev.status).toBe(130)
    expect(dev.stdout()).toMatch(/press Ctrl-C again[\s\S]*sending SIGKILL to all processes[\s\S]*terminated by SIGKILL/)
    expect(liveGroupMembers(pgid)).toEqual([])
  })

  it('stops the app when the reader of its output goes away (dev start | head)', async () => {
    const app = await tempApp({Procfile: 'a: yes\nb: sleep 6017\n'})
    const result = execFileSync('sh', ['-c', `${process.execPath} ${projectRoot}bin/run.js start -d ${app} | head -n 3 >/dev/null; echo "$?"`], {
      encoding: 'utf8',
      env: {PATH: process.env.PATH, NO_COLOR: '1'},
      timeout: 20_000,
    })
    expect(result.trim()).toBe('0')
    // dev itself exited (execFileSync returned); nothing of the app may be left.
    expect(execFileSync('sh', ['-c', `pgrep -f "^sleep 6017$" || true`], {encoding: 'utf8'}).trim()).toBe('')
  })

  it('stops every process when its terminal goes away (SIGHUP), even those ignoring SIGTERM', async () => {
    const app = await tempApp({Procfile: `web: sleep 60\nstubborn: trap '' TERM; echo ready; while true; do sleep 0.1; done\n`})
    // `script` holds the terminal; killing it closes the terminal under dev.
    const terminal = spawn('script', ['-qfec', `${process.execPath} ${projectRoot}bin/run.js start -d ${app} -t 1 --no-timestamp`, '/dev/null'], {
      env: {PATH: process.env.PATH, TERM: 'xterm'},
      stdio: ['pipe', 'pipe', 'ignore'],
    })
    let seen = ''
    terminal.stdout.on('data', (chunk: Buffer) => (seen += chunk.toString()))
    for (let tries = 0; tries < 200 && !/ready/.test(seen); tries++) await new Promise((resolve) => setTimeout(resolve, 50))
    const groups = startedPids(seen)
    expect(groups).toHaveLength(2)
    terminal.kill('SIGKILL')
    for (let tries = 0; tries < 100 && groups.some((pgid) => liveGroupMembers(pgid).length > 0); tries++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    for (const pgid of groups) expect(liveGroupMembers(pgid)).toEqual([])
  })

  it('exits even when a process left a detached child holding its output', async () => {
    const app = await tempApp({Procfile: 'web: sleep 30\nonce: setsid sleep 1015 & echo launched\n'})
    try {
      const result = runBin(['start', '-d', app, '--no-timestamp'])
      expect(result.status).toBe(0)
      expect(result.stdout).toContain('once.1 | exited with code 0')
    } finally {
      execFileSync('sh', ['-c', 'pkill -f "^sleep 1015$" || true'])
    }
  })

  it('rejects an empty -e', async () => {
    const result = runBin(['start', '-e', ''])
    expect(result.status).toBe(2)
    expect(result.stderr).toBe('error: -e/--env needs a file path\n')
  })

  it('rejects an unknown process type in one line, listing the types, exit 2', async () => {
    const app = await tempApp({Procfile: 'web: x\nworker: y\n'})
    const result = runBin(['start', '-d', app, 'wbe'])
    expect(result.status).toBe(2)
    expect(result.stderr).toBe('error: unknown process type "wbe"; the Procfile defines: web, worker\n')
    const bad = runBin(['start', '-d', app, '-m', 'web=-1'])
    expect(bad.status).toBe(2)
    expect(bad.stderr).toBe('error: bad count "-1" for web: use a whole number from 0 to 100; the Procfile defines: web, worker\n')
  })

  it('reports a broken Procfile with its line and starts nothing', async () => {
    const app = await tempApp({Procfile: 'web: sleep 60\nweb; oops\n'})
    const result = runBin(['start', '-d', app])
    expect(result.status).toBe(1)
    expect(result.stdout).toBe('')
    expect(result.stderr).toBe(`${app}/Procfile:2: expected NAME: COMMAND, got "web; oops"\n`)
  })

  it('colours prefixes on a terminal, and not with --color never or NO_COLOR', async () => {
    const app = await tempApp({Procfile: 'web: echo hello\n'})
    const inTerminal = (args: string, env: Record<string, string> = {}) =>
      execFileSync('script', ['-qec', `${process.execPath} ${projectRoot}bin/run.js start -d ${app} --no-timestamp ${args}`, '/dev/null'], {
        encoding: 'utf8',
        env: {PATH: process.env.PATH, TERM: 'xterm', ...env},
      })
    expect(inTerminal('')).toContain('\u001B[36mweb.1  |\u001B[39m hello')
    expect(inTerminal('--color never')).toContain('web.1  | hello')
    expect(inTerminal('--color never')).not.toContain('\u001B[')
    expect(inTerminal('', {NO_COLOR: '1'})).not.toContain('\u001B[')
  })

  it('colours output to a file with --color always or FORCE_COLOR', async () => {
    const app = await tempApp({Procfile: 'web: echo hello\n'})
    expect(runBin(['start', '-d', app, '--no-timestamp', '--color', 'always']).stdout).toContain('\u001B[36mweb.1  |\u001B[39m hello')
    expect(runBin(['start', '-d', app, '--no-timestamp'], {env: {FORCE_COLOR: '1', NO_COLOR: ''}}).stdout).toContain('\u001B[36mweb.1  |\u001B[39m hello')
    expect(runBin(['start', '-d', app, '--no-timestamp']).stdout).toContain('web.1  | hello')
  })
})
