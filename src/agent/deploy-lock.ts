import {randomBytes} from 'node:crypto'

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

  /** Takes the app's lock, or returns the current holder when someone else has it. */
  acquire(app: string, user: string, now = new Date()): {ok: true; holder: LockHolder; release(): void} | {ok: false; holder: LockHolder} {
    const current = this.held.get(app)
    if (current) return {ok: false, holder: current}
    const holder: LockHolder = {token: randomBytes(16).toString('hex'), user, since: now.toISOString()}
    this.held.set(app, holder)
    return {ok: true, holder, release: () => this.held.get(app) === holder && this.held.delete(app)}
  }

  /** The holder that stops a change to `app` by a request carrying `token`, if any. */
  blocker(app: string, token: string | undefined): LockHolder | undefined {
    const current = this.held.get(app)
    return current && current.token !== token ? current : undefined
  }
}
