import {randomBytes} from 'node:crypto'

import {AppError} from './app-error.js'

export interface LockHolder {
  token: string
  user: string
  since: string
}

/**
 * One deploy at a time per app. A lock belongs to the connection that took it and ends when that
 * connection closes, so a killed client never leaves a stale lock. Requests that change an app
 * while another connection holds its lock are refused with the holder's name and since when.
 */
export class DeployLocks {
  private readonly held = new Map<string, LockHolder>()
  private readonly queues = new Map<string, Promise<unknown>>()

  /** Takes the app's lock, or returns the current holder when someone else has it. */
  acquire(app: string, user: string, now = new Date()): {ok: true; holder: LockHolder; release(): void} | {ok: false; holder: LockHolder} {
    const current = this.held.get(app)
    if (current) return {ok: false, holder: current}
    const holder: LockHolder = {token: randomBytes(16).toString('hex'), user, since: now.toISOString()}
    this.held.set(app, holder)
    return {ok: true, holder, release: () => this.held.get(app) === holder && this.held.delete(app)}
  }

  /**
   * Runs a change to `app` by a request carrying `token` once the changes before it are done. The
   * lock is checked when the change's turn comes, so a lock taken while it waited refuses it (409).
   */
  change<T>(app: string, token: string | undefined, work: () => Promise<T>): Promise<T> {
    const turn = async () => {
      const holder = this.blocker(app, token)
      if (holder) throw new AppError(409, `app ${app} is being deployed by ${holder.user} since ${holder.since}; wait, or retry when that deploy ends`)
      return work()
    }
    const result = (this.queues.get(app) ?? Promise.resolve()).then(turn, turn)
    const done = result.catch(() => {})
    this.queues.set(app, done)
    // An app with nothing queued keeps no entry.
    void done.then(() => this.queues.get(app) === done && this.queues.delete(app))
    return result
  }

  /** The holder that stops a change to `app` by a request carrying `token`, if any. */
  private blocker(app: string, token: string | undefined): LockHolder | undefined {
    const current = this.held.get(app)
    return current && current.token !== token ? current : undefined
  }
}
