import type {ChildProcess} from 'node:child_process'
import {once} from 'node:events'

import {killGroupsAfter, liveGroups, signalGroup} from '../runtime/process-group.js'
import {resizeTerminal, sizedTerminal, terminalSession, type TtySize} from './run-terminal.js'

/**
 * The processes of a one-off run: the child the agent started, a process group of its own, and,
 * for a run with a terminal, the session `script` starts on it. There the command runs, so signals
 * go there, never to script (which takes a SIGTERM as the end of its session); a kill reaches both.
 */
export class RunProcess {
  private session?: number
  /** The run's terminal device, once it has its first size. */
  private device?: Promise<string | undefined>

  constructor(
    readonly child: ChildProcess,
    readonly terminal: boolean,
  ) {}

  /** The group that gets the run's signals. */
  private get target(): number | undefined {
    if (this.terminal && this.session === undefined && this.child.pid !== undefined) this.session = terminalSession(this.child.pid)
    return this.session ?? this.child.pid
  }

  /** Every group of the run. */
  private get groups(): number[] {
    return [this.child.pid, this.target].filter((pgid, index, all): pgid is number => pgid !== undefined && all.indexOf(pgid) === index)
  }

  /** Sends `signal` to the run's group; false when no process is left to get it. */
  signal(signal: NodeJS.Signals | 0): boolean {
    const target = this.target
    return target !== undefined && signalGroup(target, signal)
  }

  /** True while any process of the run is alive. */
  alive(): boolean {
    return liveGroups(this.groups).size > 0
  }

  /** SIGKILL to every group of the run. */
  kill(): void {
    for (const pgid of this.groups) signalGroup(pgid, 'SIGKILL')
  }

  /**
   * SIGTERM, then SIGKILL to whatever is left after `graceMs` (`onKill` is told first); resolves
   * once the run has exited.
   */
  async stop(graceMs: number, onKill: () => void = () => {}): Promise<void> {
    const {child} = this
    const exited = child.pid === undefined || child.exitCode !== null || child.signalCode !== null ? undefined : once(child, 'exit')
    this.signal('SIGTERM')
    await killGroupsAfter(this.groups, graceMs, onKill)
    await exited
  }

  /**
   * Resolves once the run's terminal is set up (its session started, its first size set), so that
   * signals reach the command and a resize is not undone; at once for a run without one.
   */
  async ready(): Promise<void> {
    if (!this.terminal) return
    this.device ??= sizedTerminal(this.child).then((terminal) => {
      this.session ??= terminal?.session
      return terminal?.device
    })
    await this.device
  }

  /** Sets the size of the run's terminal (nothing for a run without one). */
  async resize(size: TtySize): Promise<void> {
    await this.ready()
    const device = await this.device
    if (device !== undefined) await resizeTerminal(device, size)
  }
}
