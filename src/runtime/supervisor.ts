import type {ChildProcess} from 'node:child_process'
import {closeSync, constants as constants_fs, openSync} from 'node:fs'
import {Socket} from 'node:net'
import {constants} from 'node:os'
import type {Readable} from 'node:stream'
import {setTimeout as sleep} from 'node:timers/promises'

import {LineSplitter} from './line-splitter.js'
import {groupAlive, liveGroups, signalGroup, spawnGroup} from './process-group.js'
import {RestartBackoff, type BackoffPolicy} from './restart-backoff.js'

/** One process to supervise: a "dyno" in Heroku's words, named TYPE.N. */
export interface DynoSpec {
  /** `web.1` */
  name: string
  type: string
  command: string
  cwd: string
  env: Record<string, string>
  port?: number
  /** Source the app's `.profile.d/*.sh` before the command (processes started from a slug). */
  profile?: boolean
  /**
   * A FIFO (made by the caller) to take the process's output instead of a pipe. The process holds
   * it open for reading and writing, so it never gets SIGPIPE while nobody reads (a host agent
   * restarting), and a new reader picks up where the last one stopped.
   */
  fifo?: string
}

/** What happens when a process exits by itself. */
export type RestartPolicy = 'never' | 'on-failure' | 'always'

export interface SupervisorOptions {
  /** How long a process may take to exit after SIGTERM before its group gets SIGKILL. */
  stopTimeoutMs: number
  restart: RestartPolicy
  backoff: BackoffPolicy
  /** A partial line (no newline yet) is written out after this long without output. */
  idleFlushMs?: number
}

export type DynoEvent =
  | {kind: 'started'; dyno: string; pid: number; port?: number; adopted?: boolean}
  | {kind: 'spawn-failed'; dyno: string; message: string}
  /** `status` is null for an adopted process: only its parent could learn how it ended. */
  | {kind: 'exited'; dyno: string; code: number | null; signal: NodeJS.Signals | null; status: number | null; uptimeMs: number; stopping: boolean}
  | {kind: 'restarting'; dyno: string; delayMs: number; attempt: number}
  | {kind: 'completed'; dyno: string}
  | {kind: 'signalling'; signal: 'SIGTERM' | 'SIGKILL'; dynos: string[]; all: boolean; afterMs?: number}

export interface SupervisorHandlers {
  onEvent(event: DynoEvent): void
  /**
   * A block of whole lines of a process's output (stdout and stderr, in order), each ending in
   * "\n", bytes untouched. `linesOf(block)` splits it.
   */
  onOutput(dyno: string, block: Buffer): void
}

export type DynoState = 'running' | 'stopping' | 'waiting' | 'down'

/** How often adopted processes are checked for their end. */
const ADOPTION_POLL_MS = 250

interface Dyno {
  spec: DynoSpec
  state: DynoState
  /** Set when replace() put a new formation in its place: it must never run again. */
  retired: boolean
  child?: ChildProcess
  /** Set while the current run is an adopted process (not our child): its end is seen by polling. */
  adopted?: boolean
  /** The output stream of the current run. */
  output?: Readable
  /** The process group of the current or last run, until it is seen empty. */
  pgid?: number
  startedAt: number
  backoff: RestartBackoff
  restartTimer?: NodeJS.Timeout
  /** Settles when the current run has exited and its group is empty. */
  finished?: Promise<void>
  resolveFinished?: () => void
  /** Writes out a held partial line of the current run. */
  flushPartial?: () => void
}

/**
 * Runs processes, each in its own process group, and reports what they do: formation in, dyno
 * events and output lines out. It renders nothing; `dev start` prints the events and the host
 * agent logs them. Stopping always covers the whole group, so no grandchild survives.
 */
export class Supervisor {
  private readonly dynos = new Map<string, Dyno>()
  private paused = false
  /** Output pipes still open: a process that left its group may hold one after its dyno exited. */
  private readonly outputs = new Set<Readable>()
  /** Set by shutdown() and kill(): nothing is started or restarted any more. */
  private closing = false
  private readonly idleFlushMs: number
  /** Watches adopted processes, whose exit no 'exit' event reports. */
  private adoptionPoll?: NodeJS.Timeout

  constructor(
    private readonly options: SupervisorOptions,
    private readonly handlers: SupervisorHandlers,
  ) {
    this.idleFlushMs = options.idleFlushMs ?? 100
  }

  /** Starts a process for each spec. */
  start(specs: readonly DynoSpec[]): void {
    for (const spec of specs) this.run(this.add(spec))
  }

  /**
   * Supervises a process group that runs already: one started by an earlier supervisor (a host
   * agent before a restart) with the same spec, led by `pid`, its output on `spec.fifo`. Its end is
   * noticed by polling; afterwards it is restarted like any other.
   */
  adopt(spec: DynoSpec, pid: number, startedAt: number): void {
    if (spec.fifo === undefined) throw new Error(`dyno ${spec.name}: only a process whose output goes to a FIFO can be adopted`)
    const dyno = this.add(spec)
    dyno.state = 'running'
    dyno.adopted = true
    dyno.pgid = pid
    dyno.startedAt = startedAt
    dyno.finished = new Promise((resolve) => (dyno.resolveFinished = resolve))
    this.pump(dyno, openFifoReader(spec.fifo))
    this.handlers.onEvent({kind: 'started', dyno: spec.name, pid, port: spec.port, adopted: true})
    this.adoptionPoll ??= setInterval(() => this.pollAdopted(), ADOPTION_POLL_MS).unref()
  }

  /** Kills the process's group as if it had crashed (a boot timeout, say): the restart policy applies. */
  crash(name: string): void {
    const dyno = this.dynos.get(name)
    if (dyno?.state === 'running') signalDyno(dyno, 'SIGKILL')
  }

  /** Stops the named processes and forgets them. */
  async remove(names: readonly string[]): Promise<void> {
    const targets = this.select(names)
    for (const dyno of targets) dyno.retired = true
    await this.stop(names)
    for (const dyno of targets) this.dynos.delete(dyno.spec.name)
  }

  /** What each supervised process is doing now. */
  snapshot(): {name: string; state: DynoState; pid?: number; startedAt: number}[] {
    return [...this.dynos.values()].map((dyno) => ({name: dyno.spec.name, state: dyno.state, pid: dyno.child?.pid ?? (dyno.adopted ? dyno.pgid : undefined), startedAt: dyno.startedAt}))
  }

  private add(spec: DynoSpec): Dyno {
    if (this.dynos.has(spec.name)) throw new Error(`dyno ${spec.name} is already supervised`)
    const dyno: Dyno = {spec, state: 'down', retired: false, startedAt: 0, backoff: new RestartBackoff(this.options.backoff)}
    this.dynos.set(spec.name, dyno)
    return dyno
  }

  /** True when no process runs, none is stopping and none waits for a restart. */
  idle(): boolean {
    return [...this.dynos.values()].every((dyno) => dyno.state === 'down')
  }

  /** Stops every process for good (see stop()); nothing is restarted afterwards. */
  async shutdown(): Promise<void> {
    this.closing = true
    await this.stop()
    clearInterval(this.adoptionPoll)
    // What still holds a pipe escaped its group (setsid); its output would keep dev alive.
    for (const output of this.outputs) output.destroy()
  }

  /**
   * Stops the named processes (all by default): SIGTERM to each group, up to stopTimeoutMs for the
   * groups to empty, then SIGKILL to every group that still has a member, even if its leader is gone.
   * Stopped processes are not restarted.
   */
  async stop(names?: readonly string[]): Promise<void> {
    const targets = this.select(names)
    for (const dyno of targets) this.cancelRestart(dyno)
    const groups = liveGroups(targets.flatMap((dyno) => (dyno.pgid === undefined ? [] : [dyno.pgid])))
    const live = targets.filter((dyno) => dyno.child !== undefined || dyno.adopted || (dyno.pgid !== undefined && groups.has(dyno.pgid)))
    if (live.length === 0) return
    const signalled = live.filter((dyno) => signalDyno(dyno, 'SIGTERM'))
    for (const dyno of live) if (dyno.state === 'running') dyno.state = 'stopping'
    if (signalled.length > 0) {
      this.handlers.onEvent({kind: 'signalling', signal: 'SIGTERM', dynos: nameList(signalled), all: names === undefined})
    }
    const deadline = Date.now() + this.options.stopTimeoutMs
    const stubborn = await this.waitForGroups(live, deadline)
    if (stubborn.length > 0) {
      this.handlers.onEvent({kind: 'signalling', signal: 'SIGKILL', dynos: nameList(stubborn), all: false, afterMs: this.options.stopTimeoutMs})
      for (const dyno of stubborn) signalDyno(dyno, 'SIGKILL')
      await this.waitForGroups(stubborn, Number.POSITIVE_INFINITY)
    }
  }

  /**
   * Lets go of every process without stopping it (a host agent restarting for an upgrade): they keep
   * running, writing into their FIFOs, for the next supervisor to adopt. Nothing is restarted.
   */
  detach(): void {
    this.closing = true
    clearInterval(this.adoptionPoll)
    for (const dyno of this.dynos.values()) {
      this.cancelRestart(dyno)
      // A running child would keep this process alive.
      dyno.child?.unref()
    }
    for (const output of this.outputs) output.destroy()
  }

  /** SIGKILL to every group at once (a second Ctrl-C). */
  kill(): void {
    this.closing = true
    for (const dyno of this.dynos.values()) this.cancelRestart(dyno)
    const groups = liveGroups([...this.dynos.values()].flatMap((dyno) => (dyno.pgid === undefined ? [] : [dyno.pgid])))
    const live = [...this.dynos.values()].filter((dyno) => dyno.child !== undefined || dyno.adopted || (dyno.pgid !== undefined && groups.has(dyno.pgid)))
    if (live.length === 0) return
    this.handlers.onEvent({kind: 'signalling', signal: 'SIGKILL', dynos: nameList(live), all: true})
    for (const dyno of live) {
      if (dyno.state === 'running') dyno.state = 'stopping'
      signalDyno(dyno, 'SIGKILL')
    }
  }

  /** Gracefully stops the named processes (all by default), then starts them again. */
  async restart(names?: readonly string[]): Promise<void> {
    const targets = this.select(names)
    await this.stop(names)
    if (this.closing) return
    for (const dyno of targets) {
      dyno.backoff.reset()
      this.run(dyno)
    }
  }

  /** Gracefully stops every process, then runs `specs` instead (a new formation or configuration). */
  async replace(specs: readonly DynoSpec[]): Promise<void> {
    for (const dyno of this.dynos.values()) dyno.retired = true
    await this.stop()
    if (this.closing) return
    this.dynos.clear()
    this.start(specs)
  }

  /** Stops reading output (when the consumer is slow); the processes block once their pipe is full. */
  pauseOutput(): void {
    this.paused = true
    for (const output of this.outputs) output.pause()
  }

  resumeOutput(): void {
    this.paused = false
    for (const output of this.outputs) output.resume()
  }

  /** Settles once every process has finished and its group is empty. */
  async settled(): Promise<void> {
    await Promise.all([...this.dynos.values()].map((dyno) => dyno.finished))
  }

  private select(names?: readonly string[]): Dyno[] {
    if (names === undefined) return [...this.dynos.values()]
    return names.map((name) => {
      const dyno = this.dynos.get(name)
      if (!dyno) throw new Error(`no dyno named ${name}`)
      return dyno
    })
  }

  /** False once the dyno must not start again: dev is stopping, or a new formation replaced it. */
  private mayRun(dyno: Dyno): boolean {
    return !this.closing && !dyno.retired
  }

  private run(dyno: Dyno): void {
    if (!this.mayRun(dyno)) return
    const {spec} = dyno
    let fifo: number | undefined
    try {
      if (spec.fifo !== undefined) fifo = openSync(spec.fifo, constants_fs.O_RDWR)
    } catch (error) {
      dyno.state = 'down'
      dyno.startedAt = Date.now()
      this.handlers.onEvent({kind: 'spawn-failed', dyno: spec.name, message: `cannot open its output FIFO: ${(error as Error).message}`})
      dyno.finished = this.afterExit(dyno, 127, 0)
      return
    }
    let child: ChildProcess
    let stdout: Readable
    try {
      child = spawnGroup({command: spec.command, cwd: spec.cwd, env: spec.env, profile: spec.profile, output: fifo})
      stdout = spec.fifo === undefined ? child.stdout! : openFifoReader(spec.fifo)
    } finally {
      // The process has its own copy now; ours would keep the FIFO from ever reporting its end.
      if (fifo !== undefined) closeSync(fifo)
    }
    dyno.child = child
    dyno.startedAt = Date.now()
    dyno.state = 'running'
    dyno.pgid = child.pid

    let resolveFinished!: () => void
    dyno.finished = new Promise((resolve) => (resolveFinished = resolve))
    const outputDone = this.pump(dyno, stdout)

    child.once('error', (error) => {
      // Only a spawn failure (a missing cwd, say) lands here: there is no process to wait for.
      if (child.pid !== undefined) return
      dyno.state = 'down'
      dyno.pgid = undefined
      this.handlers.onEvent({kind: 'spawn-failed', dyno: spec.name, message: error.message})
      this.afterExit(dyno, 127, Date.now() - dyno.startedAt).finally(resolveFinished)
    })
    if (child.pid === undefined) return
    this.handlers.onEvent({kind: 'started', dyno: spec.name, pid: child.pid, port: spec.port})

    child.once('exit', (code, signal) => {
      // Node resumes a child's output streams once it exits; a grandchild may still be writing.
      setImmediate(() => {
        if (this.paused) stdout.pause()
      })
      const stopping = dyno.state === 'stopping'
      const status = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0)
      // Let the last output arrive before the exit is reported, without waiting on grandchildren.
      void Promise.race([outputDone, sleep(this.idleFlushMs, undefined, {ref: false})]).then(() => {
        dyno.child = undefined
        if (dyno.pgid !== undefined && !groupAlive(dyno.pgid)) dyno.pgid = undefined
        this.finishRun(dyno, {code, signal, status, stopping}, resolveFinished)
      })
    })
  }

  /** Reports the end of a run, then restarts it or not. */
  private finishRun(dyno: Dyno, exit: {code: number | null; signal: NodeJS.Signals | null; status: number | null; stopping: boolean}, resolveFinished: () => void): void {
    const uptimeMs = Date.now() - dyno.startedAt
    dyno.flushPartial?.()
    dyno.state = exit.stopping ? 'stopping' : 'down'
    this.handlers.onEvent({kind: 'exited', dyno: dyno.spec.name, ...exit, uptimeMs})
    if (exit.stopping) {
      resolveFinished()
      return
    }
    this.afterExit(dyno, exit.status, uptimeMs).finally(resolveFinished)
  }

  /** Adopted processes whose group is empty have ended: report each once. */
  private pollAdopted(): void {
    const adopted = [...this.dynos.values()].filter((dyno) => dyno.adopted)
    const groups = liveGroups(adopted.flatMap((dyno) => (dyno.pgid === undefined ? [] : [dyno.pgid])))
    for (const dyno of adopted) if (dyno.pgid === undefined || !groups.has(dyno.pgid)) this.adoptedEnded(dyno)
  }

  private adoptedEnded(dyno: Dyno): void {
    if (!dyno.adopted) return
    dyno.adopted = false
    dyno.pgid = undefined
    this.finishRun(dyno, {code: null, signal: null, status: null, stopping: dyno.state === 'stopping'}, dyno.resolveFinished ?? (() => {}))
  }

  /** Reads the process's output into whole lines; resolves when the stream closes. */
  private pump(dyno: Dyno, stdout: Readable): Promise<void> {
    const splitter = new LineSplitter()
    let idleTimer: NodeJS.Timeout | undefined
    // A previous run's reader of the same FIFO would take a share of this run's output.
    if (dyno.output !== undefined && dyno.output !== stdout) dyno.output.destroy()
    dyno.output = stdout
    this.outputs.add(stdout)
    const flush = (keepSplitCharacter = false) => {
      idleTimer = undefined
      const block = splitter.flush({keepSplitCharacter})
      if (block) this.handlers.onOutput(dyno.spec.name, block)
    }
    const flushIdle = () => flush(true)
    dyno.flushPartial = () => {
      if (idleTimer) clearTimeout(idleTimer)
      flush()
    }
    stdout.on('data', (chunk: Buffer) => {
      if (this.paused) stdout.pause()
      const block = splitter.push(chunk)
      if (block) this.handlers.onOutput(dyno.spec.name, block)
      if (idleTimer) clearTimeout(idleTimer)
      if (splitter.hasPartial) idleTimer = setTimeout(flushIdle, this.idleFlushMs)
    })
    if (this.paused) stdout.pause()
    return new Promise((resolve) => {
      stdout.once('close', () => {
        this.outputs.delete(stdout)
        if (idleTimer) clearTimeout(idleTimer)
        flush()
        resolve()
      })
    })
  }

  /** A process exited by itself: clear out what it left in its group, then restart or not. */
  private async afterExit(dyno: Dyno, status: number | null, uptimeMs: number): Promise<void> {
    const {restart} = this.options
    const again = restart === 'always' || (restart === 'on-failure' && status !== 0)
    if (!again) {
      if (restart === 'on-failure') this.handlers.onEvent({kind: 'completed', dyno: dyno.spec.name})
      dyno.state = 'down'
      return
    }
    // Whatever the process left in its group goes first, so it cannot hold on to the port.
    if (dyno.pgid !== undefined) await this.stop([dyno.spec.name])
    if (!this.mayRun(dyno)) {
      dyno.state = 'down'
      return
    }
    const {delayMs, attempt} = dyno.backoff.next(uptimeMs)
    this.handlers.onEvent({kind: 'restarting', dyno: dyno.spec.name, delayMs, attempt})
    dyno.state = 'waiting'
    dyno.restartTimer = setTimeout(() => {
      dyno.restartTimer = undefined
      if (dyno.state === 'waiting') this.run(dyno)
    }, delayMs)
  }

  private cancelRestart(dyno: Dyno): void {
    if (dyno.restartTimer === undefined) return
    clearTimeout(dyno.restartTimer)
    dyno.restartTimer = undefined
    dyno.state = 'down'
  }

  /** Waits until each dyno's leader has exited and its group is empty; returns those still alive at the deadline. */
  private async waitForGroups(dynos: readonly Dyno[], deadline: number): Promise<Dyno[]> {
    let waiting = [...dynos]
    for (;;) {
      const groups = liveGroups(waiting.flatMap((dyno) => (dyno.pgid === undefined ? [] : [dyno.pgid])))
      for (const dyno of waiting) {
        if (dyno.pgid !== undefined && groups.has(dyno.pgid)) continue
        if (dyno.adopted) this.adoptedEnded(dyno)
        dyno.pgid = undefined
      }
      waiting = waiting.filter((dyno) => dyno.child !== undefined || dyno.pgid !== undefined)
      if (waiting.length === 0 || Date.now() >= deadline) break
      await sleep(Math.min(20, Math.max(1, deadline - Date.now())))
    }
    for (const dyno of dynos) if (!waiting.includes(dyno) && dyno.state === 'stopping') dyno.state = 'down'
    return waiting
  }
}

/** Signals the dyno's process group; its leader alone if it left the group (a self-daemonising app). */
function signalDyno(dyno: Dyno, signal: 'SIGTERM' | 'SIGKILL'): boolean {
  if (dyno.pgid !== undefined && signalGroup(dyno.pgid, signal)) return true
  return dyno.child?.kill(signal) ?? false
}

/** A non-blocking reader of a FIFO, as a stream (a plain file stream would hold a thread per read). */
function openFifoReader(path: string): Readable {
  return new Socket({fd: openSync(path, constants_fs.O_RDONLY | constants_fs.O_NONBLOCK), readable: true, writable: false})
}

function nameList(dynos: readonly Dyno[]): string[] {
  return dynos.map((dyno) => dyno.spec.name)
}
