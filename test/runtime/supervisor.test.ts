import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {linesOf, MAX_LINE_BYTES} from '../../src/runtime/line-splitter.js'
import {isSimpleCommand, signalGroup} from '../../src/runtime/process-group.js'
import {Supervisor, type DynoEvent, type DynoSpec, type SupervisorOptions} from '../../src/runtime/supervisor.js'
import {liveGroupMembers, processAlive} from '../support/processes.js'
import {projectRoot} from '../support/run-bin.js'

function supervise(options: Partial<SupervisorOptions> = {}) {
  const events: DynoEvent[] = []
  const lines: string[] = []
  const supervisor = new Supervisor(
    {stopTimeoutMs: 5000, restart: 'never', backoff: {initialMs: 100, maxMs: 400, resetAfterMs: 60_000}, ...options},
    {onEvent: (event) => events.push(event), onOutput: (dyno, block) => lines.push(...linesOf(block).map((line) => `${dyno}: ${line.toString()}`))},
  )
  const until = async (predicate: () => boolean, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out; events: ${JSON.stringify(events)}; lines: ${lines.join('\n')}`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
  return {supervisor, events, lines, until}
}

const spec = (name: string, command: string): DynoSpec => ({name, type: name.split('.')[0]!, command, cwd: process.cwd(), env: {PATH: process.env.PATH!}})

describe('Supervisor', () => {
  it('reports start, output and exit of each process', async () => {
    const {supervisor, events, lines, until} = supervise()
    supervisor.start([spec('a.1', 'echo out; echo err >&2; exit 5')])
    await until(() => events.some((event) => event.kind === 'exited'))
    expect(events.map((event) => event.kind)).toEqual(['started', 'exited'])
    expect(events[1]).toMatchObject({dyno: 'a.1', code: 5, signal: null, status: 5, stopping: false})
    expect(lines).toEqual(['a.1: out', 'a.1: err'])
  })

  it('stops a whole process group: grandchildren too', async () => {
    const {supervisor, lines, until} = supervise()
    supervisor.start([spec('a.1', 'sleep 30 & echo child $!; sleep 30 & echo child $!; wait')])
    await until(() => lines.length === 2)
    const children = lines.map((line) => Number(line.split(' ').pop()))
    expect(children.every(processAlive)).toBe(true)
    await supervisor.shutdown()
    expect(children.some(processAlive)).toBe(false)
  })

  it('kills with SIGKILL what is left in a group whose leader already exited, after the timeout', async () => {
    const {supervisor, events, lines, until} = supervise({stopTimeoutMs: 500})
    supervisor.start([spec('a.1', `sh -c "trap '' TERM; while true; do sleep 0.1; done" & echo left $!; exit 0`)])
    await until(() => events.some((event) => event.kind === 'exited'))
    const leftover = Number(lines[0]!.split(' ').pop())
    const pgid = (events[0] as {pid: number}).pid
    expect(processAlive(leftover)).toBe(true)
    await supervisor.shutdown()
    expect(events.at(-1)).toEqual({kind: 'signalling', signal: 'SIGKILL', dynos: ['a.1'], all: false, afterMs: 500})
    expect(processAlive(leftover)).toBe(false)
    expect(liveGroupMembers(pgid)).toEqual([])
  })

  it('restarts with backoff: at once, then doubling up to the cap', async () => {
    const {supervisor, events, until} = supervise({restart: 'on-failure'})
    supervisor.start([spec('a.1', 'exit 1')])
    await until(() => events.filter((event) => event.kind === 'started').length >= 5)
    await supervisor.shutdown()
    const delays = events.flatMap((event) => (event.kind === 'restarting' ? [event.delayMs] : []))
    expect(delays.slice(0, 4)).toEqual([0, 100, 200, 400])
    // The waits really happen: five starts take at least 0 + 100 + 200 + 400 ms.
    const exits = events.filter((event) => event.kind === 'exited').length
    expect(exits).toBeGreaterThanOrEqual(4)
  })

  it('clears out what a crashed process left in its group before restarting it', async () => {
    const {supervisor, events, lines, until} = supervise({restart: 'on-failure', stopTimeoutMs: 500})
    supervisor.start([spec('a.1', 'sleep 30 & echo left $!; exit 1')])
    await until(() => events.filter((event) => event.kind === 'started').length >= 2)
    const leftover = Number(lines[0]!.split(' ').pop())
    expect(processAlive(leftover)).toBe(false)
    await supervisor.shutdown()
  })

  it('never restarts a process that replace() took out while its crash was being handled', async () => {
    const {supervisor, events, until} = supervise({restart: 'on-failure', stopTimeoutMs: 600})
    supervisor.start([spec('a.1', `sh -c "trap '' TERM; sleep 30" & exit 1`)])
    await until(() => events.some((event) => event.kind === 'exited'))
    await supervisor.replace([spec('b.1', 'sleep 30')])
    await new Promise((resolve) => setTimeout(resolve, 1500))
    await supervisor.shutdown()
    const started = events.flatMap((event) => (event.kind === 'started' ? [event] : []))
    expect(started.map((event) => event.dyno)).toEqual(['a.1', 'b.1'])
    for (const {pid} of started) expect(liveGroupMembers(pid)).toEqual([])
  })

  it('keeps output paused after the leader exits while a grandchild writes on', async () => {
    let bytes = 0
    const supervisor = new Supervisor(
      {stopTimeoutMs: 1000, restart: 'never', backoff: {initialMs: 100, maxMs: 400, resetAfterMs: 60_000}},
      {onEvent: () => {}, onOutput: (_dyno, block) => (bytes += block.length)},
    )
    supervisor.pauseOutput()
    supervisor.start([spec('a.1', 'yes & exit 0')])
    await new Promise((resolve) => setTimeout(resolve, 1000))
    expect(bytes).toBeLessThan(1_000_000)
    await supervisor.shutdown()
  })

  it('runs nothing more after shutdown, not even a pending restart', async () => {
    const {supervisor, events, until} = supervise({restart: 'always', backoff: {initialMs: 200, maxMs: 200, resetAfterMs: 60_000}})
    supervisor.start([spec('a.1', 'exit 0')])
    await until(() => events.filter((event) => event.kind === 'restarting').length >= 2)
    await supervisor.shutdown()
    const started = events.filter((event) => event.kind === 'started').length
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect(events.filter((event) => event.kind === 'started').length).toBe(started)
    expect(supervisor.idle()).toBe(true)
  })

  it('reports a process that cannot be started', async () => {
    const {supervisor, events, until} = supervise()
    supervisor.start([{...spec('a.1', 'true'), cwd: '/nonexistent/dir'}])
    await until(() => events.length > 0)
    expect(events[0]).toMatchObject({kind: 'spawn-failed', dyno: 'a.1'})
  })

  it('reports, not throws, a spawn Node refuses outright (an environment value with a NUL)', async () => {
    const {supervisor, events, until} = supervise()
    expect(() => supervisor.start([{...spec('a.1', 'true'), env: {PATH: process.env.PATH!, BAD: 'a\0b'}}])).not.toThrow()
    await until(() => events.length > 0)
    expect(events[0]).toMatchObject({kind: 'spawn-failed', dyno: 'a.1'})
    await supervisor.shutdown()
  })

  it('pauses reading output, so a process blocks instead of memory growing', async () => {
    const {supervisor, lines, until} = supervise()
    supervisor.pauseOutput()
    supervisor.start([spec('a.1', 'yes | head -c 5000000; echo; echo done')])
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(lines.length).toBe(0)
    supervisor.resumeOutput()
    await until(() => lines.includes('a.1: done'))
    await supervisor.shutdown()
  })

  it('hands out a long line without a newline in pieces of at most MAX_LINE_BYTES, every byte kept', async () => {
    const pieces: Buffer[] = []
    let exited!: () => void
    const supervisor = new Supervisor(
      {stopTimeoutMs: 1000, restart: 'never', backoff: {initialMs: 100, maxMs: 400, resetAfterMs: 60_000}},
      {onEvent: (event) => event.kind === 'exited' && exited(), onOutput: (_dyno, block) => pieces.push(...linesOf(block))},
    )
    await new Promise<void>((resolve) => {
      exited = resolve
      supervisor.start([spec('a.1', "head -c 1048576 /dev/zero | tr '\\0' x")])
    })
    expect(Math.max(...pieces.map((piece) => piece.length))).toBeLessThanOrEqual(MAX_LINE_BYTES)
    expect(Buffer.concat(pieces).equals(Buffer.alloc(1024 * 1024, 'x'))).toBe(true)
  })

  it('never stops the next run when a restart races the clearing up after a crash', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dev-race-'))
    const {supervisor, events, until} = supervise({restart: 'always', stopTimeoutMs: 1000})
    // The first run crashes, leaving in its group a process that exits at the second SIGTERM only;
    // every later run just keeps running.
    const leftover = `sh -c 'n=0; trap "n=\\$((n+1)); [ \\$n -ge 2 ] && exit 0" TERM; while :; do sleep 0.05; done'`
    supervisor.start([spec('a.1', `if [ -e ${dir}/ran ]; then exec sleep 30; fi; touch ${dir}/ran; ${leftover} & exit 1`)])
    // The crash's clearing up has sent its SIGTERM; the restart sends the second one and starts a new run.
    await until(() => events.some((event) => event.kind === 'signalling' && event.signal === 'SIGTERM'))
    await supervisor.restart(['a.1'])
    const started = events.filter((event) => event.kind === 'started')
    expect(started).toHaveLength(2)
    const successor = (started[1] as {pid: number}).pid
    // Past the clearing up's own SIGKILL deadline, which once fell on the new run.
    await new Promise((resolve) => setTimeout(resolve, 1500))
    expect(processAlive(successor)).toBe(true)
    expect(supervisor.snapshot()).toMatchObject([{name: 'a.1', state: 'running', pid: successor}])
    expect(events.filter((event) => event.kind === 'started')).toHaveLength(2)
    await supervisor.shutdown()
    expect(liveGroupMembers(successor)).toEqual([])
  })

  it('lets go of its processes, and of one-off runs on pipes, so the process holding them can exit', async () => {
    const holder = spawn(process.execPath, ['--import', 'tsx', join(projectRoot, 'test/support/detach-entry.ts')], {cwd: projectRoot, stdio: ['ignore', 'pipe', 'inherit']})
    let out = ''
    holder.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    const [code] = (await once(holder, 'exit')) as [number | null]
    const pids = JSON.parse(out) as {dyno: number; run: number}
    try {
      expect(code).toBe(0)
      expect(processAlive(pids.dyno)).toBe(true)
      expect(processAlive(pids.run)).toBe(true)
    } finally {
      for (const pid of [pids.dyno, pids.run]) signalGroup(pid, 'SIGKILL')
    }
  })
})

describe('isSimpleCommand', () => {
  it('lets one plain program replace the shell, and keeps the shell for anything else', () => {
    for (const command of ['node server.js --port $PORT', 'node -e "setInterval(() => {}, 1000)"', "echo 'a;b'", 'bundle exec puma -C config/puma.rb']) {
      expect(isSimpleCommand(command)).toBe(true)
    }
    for (const command of ['a && b', 'a; b', 'a | b', 'a > log', 'echo "$(id)"', 'echo `id`', 'FOO=1 node x', 'cd app', '(cd app)', 'exec node x', "echo 'open"]) {
      expect(isSimpleCommand(command)).toBe(false)
    }
  })
})
