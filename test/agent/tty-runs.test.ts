import {readdir, symlink} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {encodeFrame, Frame} from '../../src/agent/run-protocol.js'
import {attachedRun, eventually} from '../support/agent.js'
import {processAlive} from '../support/processes.js'
import {tempApp} from '../support/temp-app.js'
import {deployedShop} from './deployed-shop.js'

type Run = Awaited<ReturnType<typeof attachedRun>>

const TTY = {rows: 24, cols: 80}

/** An attached run of `request` on shop, started; `until` waits for that text in its output. */
async function started(home: string, request: object, until?: string): Promise<Run> {
  const run = await attachedRun(home, 'shop')
  run.request(request)
  if (until !== undefined) await eventually(async () => run.out.stdout, (stdout) => stdout.includes(until))
  return run
}

/** What the client of an attached run of `request` got, once the run is over. */
async function ran(home: string, request: object): Promise<Run['out']> {
  const run = await started(home, request)
  await run.closed
  return run.out
}

const resize = (run: Run, size: {rows: number; cols: number}) => run.socket.write(encodeFrame(Frame.resize, JSON.stringify(size)))

describe('attached runs on a terminal (bundled agent, real processes)', () => {
  it('gives the run a terminal of the asked size and TERM, its stderr on the one output, its argv as given, and its status', async () => {
    const {home} = await deployedShop()
    expect(await ran(home, {command: ['sh', '-c', 'stty size; [ -t 0 ] && [ -t 1 ] && echo tty; echo "term $TERM as $DYNO"; echo oops >&2; exit 3'], tty: {rows: 30, cols: 100}})).toMatchObject({
      stdout: '30 100\r\ntty\r\nterm xterm-256color as run.1\r\noops\r\n',
      stderr: '',
      exit: {status: 3},
    })
    // Words are passed as they are, never parsed by a shell; the run's own SHELL is not script's.
    const tty = {rows: 5, cols: 20}
    expect(await ran(home, {command: ['printf', '%s|', 'a b', '$HOME', "it's", '"; exit 9'], env: {SHELL: '/bin/false'}, tty})).toMatchObject({stdout: 'a b|$HOME|it\'s|"; exit 9|', exit: {status: 0}})
    expect(await ran(home, {command: ['echo "$TERM $SHELL ${DEV_TTY_ARGC-unset}"'], env: {SHELL: '/bin/false'}, tty, term: 'vt100'})).toMatchObject({stdout: 'vt100 /bin/false unset\r\n', exit: {status: 0}})
  })

  it('resizes the terminal: the run sees the new size and gets SIGWINCH', async () => {
    const {home} = await deployedShop()
    const run = await started(home, {command: ['sh', '-c', 'read line; stty size'], tty: TTY})
    resize(run, {rows: 40, cols: 120})
    run.stdin('go\n')
    await run.closed
    // The terminal echoes what is typed, as `ssh -t` shows it.
    expect(run.out).toMatchObject({stdout: 'go\r\n40 120\r\n', exit: {status: 0}})

    const winch = await started(home, {command: ['sh', '-c', 'trap "stty size; exit 5" WINCH; echo ready; while :; do sleep 0.1; done'], tty: TTY}, 'ready')
    resize(winch, {rows: 50, cols: 132})
    await winch.closed
    expect(winch.out).toMatchObject({stdout: 'ready\r\n50 132\r\n', exit: {status: 5}})
  })

  it('interrupts the foreground command on a Ctrl-C byte, passes signals to it, and ends input with the EOF character', async () => {
    const {home} = await deployedShop()
    const run = await started(home, {command: ['sh', '-c', 'echo ready; exec sleep 30'], tty: TTY}, 'ready')
    run.stdin('\x03')
    await run.closed
    expect(run.out.exit).toEqual({status: 130})

    // A signal goes to the command on the terminal, not to `script` (which would end with 0).
    const term = await started(home, {command: ['sleep', '30'], tty: TTY})
    term.signal('SIGTERM')
    await term.closed
    expect(term.out).toMatchObject({stdout: '', exit: {status: 143}})

    const cat = await started(home, {command: ['cat'], tty: TTY})
    cat.stdin('abc\n')
    cat.stdinEnd()
    await cat.closed
    expect(cat.out).toMatchObject({stdout: 'abc\r\nabc\r\n', exit: {status: 0}})
  })

  it('sends the terminal SIGHUP when the client goes away, then SIGKILL after the grace (R16)', async () => {
    const shop = await deployedShop({stop_grace_seconds: 0.5})
    const run = await started(shop.home, {command: ['sh', '-c', 'trap "" HUP; echo "pid $$"; while true; do sleep 0.1; done'], tty: TTY}, '\n')
    const pid = Number(run.out.stdout.trim().split(' ')[1])
    run.socket.destroy()
    const log = await eventually(shop.log, (lines) => lines.some((line) => line.includes('agent[run.1]: Process exited')))
    expect(log.some((line) => line.endsWith('agent[run.1]: Client connection closed. Sending SIGHUP to all processes')), log.join('\n')).toBe(true)
    expect(log.some((line) => line.includes('agent[run.1]: Error R16 (Detached)'))).toBe(true)
    expect(processAlive(pid)).toBe(false)

    const plain = await started(shop.home, {command: ['sh', '-c', 'echo ready; exec sleep 600'], tty: TTY}, 'ready')
    plain.socket.destroy()
    const ended = await eventually(shop.log, (lines) => lines.some((line) => line.endsWith('agent[run.1]: Process exited with status 129')))
    expect(ended.some((line) => line.endsWith('agent[run.1]: Process exited with status 129'))).toBe(true)
  })

  it('refuses a bad terminal request or resize frame clearly', async () => {
    const {home} = await deployedShop()
    expect((await ran(home, {command: ['true'], tty: {rows: 0, cols: 80}})).exit?.error).toMatch(/^invalid run request at tty\.rows: /)
    expect((await ran(home, {command: ['true'], tty: TTY, term: 'x; rm -rf /'})).exit).toEqual({error: 'invalid run request at term: a terminal type like xterm-256color'})
    expect((await ran(home, {command: ['true'], term: 'vt100'})).exit).toEqual({error: 'invalid run request at term: a terminal type goes with "tty"'})
    const run = await started(home, {command: ['sh', '-c', 'echo ready; exec sleep 600'], tty: TTY}, 'ready')
    resize(run, {rows: 24, cols: 1001})
    await run.closed
    expect(run.out.exit?.error).toMatch(/^invalid resize frame at cols: /)
  })

  it('says so when the host has no `script` for a terminal, and runs without one', async () => {
    // A PATH with every program of the host but script.
    const bin = await tempApp({})
    for (const dir of ['/usr/bin', '/bin']) for (const name of await readdir(dir)) if (name !== 'script') await symlink(join(dir, name), join(bin, name)).catch(() => {})
    await symlink(process.execPath, join(bin, 'node')).catch(() => {})
    const path = process.env.PATH
    process.env.PATH = bin
    const {home} = await deployedShop().finally(() => (process.env.PATH = path))
    expect((await ran(home, {command: ['true'], tty: TTY})).exit).toEqual({error: 'this host has no `script` command (util-linux) for a terminal; run without one'})
    expect((await ran(home, {command: ['true']})).exit).toEqual({status: 0})
  })
})
