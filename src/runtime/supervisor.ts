import type {ChildProcess} from 'node:child_process'
import {closeSync, constants as constants_fs, openSync} from 'node:fs'
import {Socket} from 'node:net'
import {constants} from 'node:os'
import type {Readable} from 'node:stream'
import {setTimeout as sleep} from 'node:timers/promises'

import {LineSplitter} from './line-splitter.js'
import {groupAlive, liveGroups, releaseChild, signalGroup, spawnGroup} from './process-group.js'
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
   * "\n", bytes untouched; a line longer than MAX_LINE_BYTES comes in pieces. `linesOf(block)` splits it.
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
  /** The current or last run. */
  run?: Run
  /** The output stream of the current run. */
  output?: Readable
  backoff: RestartBackoff
  restartTimer?: NodeJS.Timeout
}

/**
 * One run of a dyno: a process group started (or adopted) once. Stopping and clearing up target a
 * run, not a dyno, so what is done about one run never reaches the next (a restart racing a crash).
 */
interface Run {
  /** Our child, until its exit has been handled. */
  child?: ChildProcess
  /** An adopted process (not our child): its end is seen by polling. */
  adopted: boolean
  /** The process group, until it is seen empty. */
  pgid?: number
  startedAt: number
  /** Set once stop() or kill() signalled it: its exit is then no crash. */
  stopping: boolean
  /** Settles when it has exited, its group is empty and any restart is scheduled. */
  finished: Promise<void>
  resolveFinished: () => void
  /** Writes out a held partial line. */
  flushPartial?: () => void
}

interface DynoRun {
  dyno: Dyno
  run: Run
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
    for (const spec of specs) this.launch(this.add(spec))
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
    const run = newRun(dyno, startedAt)
    run.adopted = true
    run.pgid = pid
    this.pump(dyno, run, openFifoReader(spec.fifo))
    this.handlers.onEvent({kind: 'started', dyno: spec.name, pid, port: spec.port, adopted: true})
    this.adoptionPoll ??= setInterval(() => this.pollAdopted(), ADOPTION_POLL_MS).unref()
  }

  /** Kills the process's group as if it had crashed (a boot timeout, say): the restart policy applies. */
  crash(name: string): void {
    const dyno = this.dynos.get(name)
    if (dyno?.state === 'running' && dyno.run) signalRun(dyno.run, 'SIGKILL')
  }

  /** Stops the named processes and forgets them. */
  async remove(names: readonly string[]): Promise<void> {
    const targets = this.select(names)
    for (const dyno of targets) dyno.retired = true
    await this.stop(names)
    // A replace() meanwhile may have put a new dyno under the same name: that one stays.
    for (const dyno of targets) if (this.dynos.get(dyno.spec.name) === dyno) this.dynos.delete(dyno.spec.name)
  }

  /** What each supervised process is doing now. */
  snapshot(): {name: string; state: DynoState; pid?: number; startedAt: number}[] {
    return [...this.dynos.values()].map(({spec, state, run}) => ({name: spec.name, state, pid: run?.child?.pid ?? (run?.adopted ? run.pgid : undefined), startedAt: run?.startedAt ?? 0}))
  }

  private add(spec: DynoSpec): Dyno {
    if (this.dynos.has(spec.name)) throw new Error(`dyno ${spec.name} is already supervised`)
    const dyno: Dyno = {spec, state: 'down', retired: false, backoff: new RestartBackoff(this.options.backoff)}
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
    await this.stopRuns(currentRuns(targets), names === undefined)
  }

  /** stop() for these runs alone: a later run of the same dyno is not touched. */
  private async stopRuns(targets: readonly DynoRun[], all: boolean): Promise<void> {
    const live = liveRuns(targets)
    if (live.length === 0) return
    const signalled = live.filter(({run}) => signalRun(run, 'SIGTERM'))
    for (const target of live) markStopping(target)
    if (signalled.length > 0) {
      this.handlers.onEvent({kind: 'signalling', signal: 'SIGTERM', dynos: nameList(signalled), all})
    }
    const deadline = Date.now() + this.options.stopTimeoutMs
    const stubborn = await this.waitForRuns(live, deadline)
    if (stubborn.length > 0) {
      this.handlers.onEvent({kind: 'signalling', signal: 'SIGKILL', dynos: nameList(stubborn), all: false, afterMs: this.options.stopTimeoutMs})
      for (const {run} of stubborn) signalRun(run, 'SIGKILL')
      await this.waitForRuns(stubborn, Number.POSITIVE_INFINITY)
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
      if (dyno.run?.child) releaseChild(dyno.run.child)
    }
    // Destroyed, not just let go: a reader left on a FIFO would take a share of the next reader's lines.
    for (const output of this.outputs) output.destroy()
  }

  /** SIGKILL to every group at once (a second Ctrl-C). */
  kill(): void {
    this.closing = true
    for (const dyno of this.dynos.values()) this.cancelRestart(dyno)
    const live = liveRuns(currentRuns([...this.dynos.values()]))
    if (live.length === 0) return
    this.handlers.onEvent({kind: 'signalling', signal: 'SIGKILL', dynos: nameList(live), all: true})
    for (const target of live) {
      markStopping(target)
      signalRun(target.run, 'SIGKILL')
    }
  }

  /** Gracefully stops the named processes (all by default), then starts them again. */
  async restart(names?: readonly string[]): Promise<void> {
    const targets = this.select(names)
    const stopped = targets.map((dyno) => dyno.run)
    await this.stop(names)
    if (this.closing) return
    for (const [index, dyno] of targets.entries()) {
      // A run started while this one was stopping (another restart, the restart policy) stays.
      if (dyno.run !== stopped[index]) continue
      this.cancelRestart(dyno)
      dyno.backoff.reset()
      this.launch(dyno)
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
    await Promise.all([...this.dynos.values()].map((dyno) => dyno.run?.finished))
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

  private launch(dyno: Dyno): void {
    if (!this.mayRun(dyno)) return
    const {spec} = dyno
    const run = newRun(dyno)
    let fifo: number | undefined
    try {
      if (spec.fifo !== undefined) fifo = openSync(spec.fifo, constants_fs.O_RDWR)
    } catch (error) {
      dyno.state = 'down'
      this.handlers.onEvent({kind: 'spawn-failed', dyno: spec.name, message: `cannot open its output FIFO: ${(error as Error).message}`})
      this.afterExit(dyno, run, 127, 0).finally(run.resolveFinished)
      return
    }
    let child: ChildProcess
    let stdout: Readable
    try {
      child = spawnGroup({command: spec.command, cwd: spec.cwd, env: spec.env, profile: spec.profile, output: fifo})
      stdout = spec.fifo === undefined ? child.stdout! : openFifoReader(spec.fifo)
    } catch (error) {
      // Node refuses some spawns before any process exists (an environment it cannot pass): the
      // dyno fails to start like any other spawn failure, and the caller is not thrown at.
      dyno.state = 'down'
      this.handlers.onEvent({kind: 'spawn-failed', dyno: spec.name, message: (error as Error).message.split('\n')[0]!})
      this.afterExit(dyno, run, 127, 0).finally(run.resolveFinished)
      return
    } finally {
      // The process has its own copy now; ours would keep the FIFO from ever reporting its end.
      if (fifo !== undefined) closeSync(fifo)
    }
    run.child = child
    run.pgid = child.pid
    dyno.state = 'running'
    const outputDone = this.pump(dyno, run, stdout)

    child.once('error', (error) => {
      // Only a spawn failure (a missing cwd, say) lands here: there is no process to wait for.
      if (child.pid !== undefined) return
      dyno.state = 'down'
      run.child = undefined
      this.handlers.onEvent({kind: 'spawn-failed', dyno: spec.name, message: error.message})
      this.afterExit(dyno, run, 127, Date.now() - run.startedAt).finally(run.resolveFinished)
    })
    if (child.pid === undefined) return
    this.handlers.onEvent({kind: 'started', dyno: spec.name, pid: child.pid, port: spec.port})

    child.once('exit', (code, signal) => {
      // Node resumes a child's output streams once it exits; a grandchild may still be writing.
      setImmediate(() => {
        if (this.paused) stdout.pause()
      })
      const stopping = run.stopping
      const status = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0)
      // Let the last output arrive before the exit is reported, without waiting on grandchildren.
      void Promise.race([outputDone, sleep(this.idleFlushMs, undefined, {ref: false})]).then(() => {
        run.child = undefined
        if (run.pgid !== undefined && !groupAlive(run.pgid)) run.pgid = undefined
        this.finishRun(dyno, run, {code, signal, status, stopping})
      })
    })
  }

  /** Reports the end of a run, then restarts it or not. */
  private finishRun(dyno: Dyno, run: Run, exit: {code: number | null; signal: NodeJS.Signals | null; status: number | null; stopping: boolean}): void {
    const uptimeMs = Date.now() - run.startedAt
    run.flushPartial?.()
    dyno.state = exit.stopping ? 'stopping' : 'down'
    this.handlers.onEvent({kind: 'exited', dyno: dyno.spec.name, ...exit, uptimeMs})
    if (exit.stopping) {
      run.resolveFinished()
      return
    }
    this.afterExit(dyno, run, exit.status, uptimeMs).finally(run.resolveFinished)
  }

  /** Adopted processes whose group is empty have ended: report each once. */
  private pollAdopted(): void {
    const adopted = currentRuns([...this.dynos.values()]).filter(({run}) => run.adopted)
    const groups = liveGroups(pgidsOf(adopted))
    for (const {dyno, run} of adopted) if (run.pgid === undefined || !groups.has(run.pgid)) this.adoptedEnded(dyno, run)
  }

  private adoptedEnded(dyno: Dyno, run: Run): void {
    if (!run.adopted) return
    run.adopted = false
    run.pgid = undefined
    this.finishRun(dyno, run, {code: null, signal: null, status: null, stopping: run.stopping})
  }

  /** Reads the process's output into whole lines; resolves when the stream closes. */
  private pump(dyno: Dyno, run: Run, stdout: Readable): Promise<void> {
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
    run.flushPartial = () => {
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
  private async afterExit(dyno: Dyno, run: Run, status: number | null, uptimeMs: number): Promise<void> {
    const {restart} = this.options
    const again = restart === 'always' || (restart === 'on-failure' && status !== 0)
    if (!again) {
      if (restart === 'on-failure') this.handlers.onEvent({kind: 'completed', dyno: dyno.spec.name})
      dyno.state = 'down'
      return
    }
    // Whatever the process left in its group goes first, so it cannot hold on to the port.
    if (run.pgid !== undefined) await this.stopRuns([{dyno, run}], false)
    // A restart() that raced this exit has started the next run already.
    if (dyno.run !== run) return
    if (!this.mayRun(dyno)) {
      dyno.state = 'down'
      return
    }
    const {delayMs, attempt} = dyno.backoff.next(uptimeMs)
    this.handlers.onEvent({kind: 'restarting', dyno: dyno.spec.name, delayMs, attempt})
    dyno.state = 'waiting'
    dyno.restartTimer = setTimeout(() => {
      dyno.restartTimer = undefined
      if (dyno.state === 'waiting') this.launch(dyno)
    }, delayMs)
  }

  private cancelRestart(dyno: Dyno): void {
    if (dyno.restartTimer === undefined) return
    clearTimeout(dyno.restartTimer)
    dyno.restartTimer = undefined
    dyno.state = 'down'
  }

  /** Waits until each run's leader has exited and its group is empty; returns those still alive at the deadline. */
  private async waitForRuns(targets: readonly DynoRun[], deadline: number): Promise<DynoRun[]> {
    let waiting = [...targets]
    for (;;) {
      const groups = liveGroups(pgidsOf(waiting))
      for (const {dyno, run} of waiting) {
        if (run.pgid !== undefined && groups.has(run.pgid)) continue
        if (run.adopted) this.adoptedEnded(dyno, run)
        run.pgid = undefined
      }
      waiting = waiting.filter(({run}) => run.child !== undefined || run.pgid !== undefined)
      if (waiting.length === 0 || Date.now() >= deadline) break
      await sleep(Math.min(20, Math.max(1, deadline - Date.now())))
    }
    for (const target of targets) if (!waiting.includes(target) && target.dyno.run === target.run && target.dyno.state === 'stopping') target.dyno.state = 'down'
    return waiting
  }
}

/** Starts the dyno's next run (its current one from now on). */
function newRun(dyno: Dyno, startedAt = Date.now()): Run {
  let resolveFinished!: () => void
  const finished = new Promise<void>((resolve) => (resolveFinished = resolve))
  dyno.run = {adopted: false, startedAt, stopping: false, finished, resolveFinished}
  return dyno.run
}

function currentRuns(dynos: readonly Dyno[]): DynoRun[] {
  return dynos.flatMap((dyno) => (dyno.run === undefined ? [] : [{dyno, run: dyno.run}]))
}

function pgidsOf(targets: readonly DynoRun[]): number[] {
  return targets.flatMap(({run}) => (run.pgid === undefined ? [] : [run.pgid]))
}

/** The runs still going: a child not yet reaped, an adopted process, or a group with members left. */
function liveRuns(targets: readonly DynoRun[]): DynoRun[] {
  const groups = liveGroups(pgidsOf(targets))
  return targets.filter(({run}) => run.child !== undefined || run.adopted || (run.pgid !== undefined && groups.has(run.pgid)))
}

/** Its exit is no crash; the dyno shows it stopping while this is its current run. */
function markStopping({dyno, run}: DynoRun): void {
  run.stopping = true
  if (dyno.run === run && dyno.state === 'running') dyno.state = 'stopping'
}

/** Signals the run's process group; its leader alone if it left the group (a self-daemonising app). */
function signalRun(run: Run, signal: 'SIGTERM' | 'SIGKILL'): boolean {
  if (run.pgid !== undefined && signalGroup(run.pgid, signal)) return true
  return run.child?.kill(signal) ?? false
}

/** A non-blocking reader of a FIFO, as a stream (a plain file stream would hold a thread per read). */
function openFifoReader(path: string): Readable {
  return new Socket({fd: openSync(path, constants_fs.O_RDONLY | constants_fs.O_NONBLOCK), readable: true, writable: false})
}

function nameList(targets: readonly DynoRun[]): string[] {
  return targets.map(({dyno}) => dyno.spec.name)
}
