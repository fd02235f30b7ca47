import {execFileSync} from 'node:child_process'
import {mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {linesOf} from '../../src/runtime/line-splitter.js'
import {Supervisor, type DynoEvent, type DynoSpec} from '../../src/runtime/supervisor.js'
import {liveGroupMembers, processAlive} from '../support/processes.js'

function supervise() {
  const events: DynoEvent[] = []
  const lines: string[] = []
  const supervisor = new Supervisor(
    {stopTimeoutMs: 2000, restart: 'always', backoff: {initialMs: 100, maxMs: 400, resetAfterMs: 60_000}},
    {onEvent: (event) => events.push(event), onOutput: (dyno, block) => lines.push(...linesOf(block).map((line) => `${dyno}: ${line.toString()}`))},
  )
  return {supervisor, events, lines}
}

async function until(predicate: () => boolean, what: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what()}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

async function fifoSpec(command: string): Promise<DynoSpec> {
  const fifo = join(await mkdtemp(join(tmpdir(), 'dev-fifo-')), 'web.1.fifo')
  execFileSync('mkfifo', ['-m', '600', fifo])
  return {name: 'web.1', type: 'web', command, cwd: process.cwd(), env: {PATH: process.env.PATH!}, fifo}
}

const TICKER = 'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.05; done'

describe('Supervisor with FIFO output (host dynos)', () => {
  it('reads output through the FIFO and reports the exit status', async () => {
    const {supervisor, events, lines} = supervise()
    supervisor.start([await fifoSpec('echo out; echo err >&2; exit 3')])
    await until(() => events.some((event) => event.kind === 'exited'), () => JSON.stringify(events))
    expect(events.find((event) => event.kind === 'exited')).toMatchObject({code: 3, status: 3, stopping: false})
    expect(lines.slice(0, 2)).toEqual(['web.1: out', 'web.1: err'])
    await supervisor.shutdown()
  })

  it('lets go of a process that keeps running with nobody reading, and a new supervisor adopts it', async () => {
    const first = supervise()
    const spec = await fifoSpec(TICKER)
    first.supervisor.start([spec])
    await until(() => first.lines.length >= 2, () => first.lines.join('\n'))
    const pid = (first.events[0] as {pid: number}).pid
    first.supervisor.detach()

    // Nobody reads for a while: the process must not die of SIGPIPE.
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(processAlive(pid)).toBe(true)

    const second = supervise()
    second.supervisor.adopt(spec, pid, Date.now())
    expect(second.events[0]).toMatchObject({kind: 'started', dyno: 'web.1', pid, adopted: true})
    await until(() => second.lines.length >= 3, () => second.lines.join('\n'))
    // It picks up where the first reader stopped: the ticks go on in order, none read twice.
    const seen = [...first.lines, ...second.lines].map((line) => Number(line.split(' ').pop()))
    expect(seen).toEqual(seen.map((_, index) => seen[0]! + index))

    await second.supervisor.shutdown()
    expect(second.events.find((event) => event.kind === 'exited')).toMatchObject({status: null, stopping: true})
    expect(liveGroupMembers(pid)).toEqual([])
  })

  it('notices an adopted process that dies and starts it again as its own child', async () => {
    const first = supervise()
    const spec = await fifoSpec(TICKER)
    first.supervisor.start([spec])
    await until(() => first.lines.length >= 1, () => first.lines.join('\n'))
    const pid = (first.events[0] as {pid: number}).pid
    first.supervisor.detach()

    const second = supervise()
    second.supervisor.adopt(spec, pid, Date.now())
    process.kill(-pid, 'SIGKILL')
    await until(() => second.events.filter((event) => event.kind === 'started').length === 2, () => JSON.stringify(second.events))
    expect(second.events.map((event) => event.kind)).toEqual(['started', 'exited', 'restarting', 'started'])
    expect(second.events[1]).toMatchObject({status: null, stopping: false})
    expect(second.events[3]).not.toHaveProperty('adopted')
    await second.supervisor.shutdown()
  })

  it('crash() kills a process as a crash: the restart policy applies', async () => {
    const {supervisor, events} = supervise()
    supervisor.start([await fifoSpec(TICKER)])
    await until(() => events.length === 1, () => JSON.stringify(events))
    supervisor.crash('web.1')
    await until(() => events.filter((event) => event.kind === 'started').length === 2, () => JSON.stringify(events))
    expect(events[1]).toMatchObject({kind: 'exited', signal: 'SIGKILL', status: 137, stopping: false})
    await supervisor.remove(['web.1'])
    expect(supervisor.snapshot()).toEqual([])
    expect(supervisor.idle()).toBe(true)
  })
})
