import {performance} from 'node:perf_hooks'

import type {Backend} from './backend.js'
import type {ClientExchange} from './client-exchange.js'
import type {RouterCode} from './router-errors.js'
import {routerLogLine, type RoutedRequest} from './router-log-line.js'

/** How one try at a dyno ended: refused, not accepted in time, or reset (nothing reached it; try again), or done. */
export type Outcome = 'refused' | 'timed-out' | 'reset' | 'done'

/** What a try needs from the router. */
export interface AttemptParts {
  backend: Backend
  exchange: ClientExchange
  record: RoutedRequest
  /** When the request arrived (epoch ms): its service time counts from then, earlier tries included. */
  startedAt: number
  /** The client's body pausing this long ends the request (H28). */
  clientIdleMs: number
  firstByteTimeoutMs: number
  /** The answer moving no byte this long once under way ends the request (H15). */
  idleTimeoutMs: number
  /** The router's own answer (an error page) with its log line. */
  answer: (code: RouterCode) => Promise<void>
  log: (line: string) => void
}

/**
 * One try at passing a request to one dyno: it counts as outstanding on the dyno from start to end,
 * ends exactly once (with its log line, or the router's answer when the dyno gave none), and gives
 * up with H12 when no answer starts within the request timeout of the request being sent.
 */
export class Attempt {
  connected = false
  responded = false
  settled = false
  readonly done: Promise<Outcome>
  private resolve!: (outcome: Outcome) => void
  private readonly sentAt = performance.now()
  private timer?: NodeJS.Timeout
  private readonly onTimeout: () => void

  constructor(
    private readonly parts: AttemptParts,
    /** Stops the dyno's side when the timeout comes. */
    onTimeout: () => void,
    /** The request has a body: the timeout starts once it is all sent (see `sent`). */
    {afterUpload = false} = {},
  ) {
    this.done = new Promise((resolve) => (this.resolve = resolve))
    parts.backend.begin()
    parts.record.dyno = parts.backend.name
    this.onTimeout = onTimeout
    if (!afterUpload) this.timer = this.startTimer()
  }

  /** The request is all sent (a long upload is no slow answer): the timeout counts from now. */
  sent(): void {
    if (this.responded || this.settled) return
    this.timer = this.startTimer()
  }

  private startTimer(): NodeJS.Timeout {
    return setTimeout(() => {
      this.settle('done', 'H12')
      this.onTimeout()
    }, this.parts.firstByteTimeoutMs)
  }

  connect(): void {
    this.connected = true
    this.parts.record.connectMs = performance.now() - this.sentAt
  }

  /** The dyno's answer started: no more timeout. */
  respond(status: number): void {
    clearTimeout(this.timer)
    this.responded = true
    this.parts.record.status = status
  }

  settle(outcome: Outcome, code?: RouterCode): void {
    if (this.settled) return
    this.settled = true
    clearTimeout(this.timer)
    const {backend, record, exchange} = this.parts
    backend.end()
    // What the client waited, less this try's connect: a try before it (refused, or dropped unanswered) counts.
    record.serviceMs = Math.max(0, Date.now() - this.parts.startedAt - record.connectMs)
    if (outcome !== 'done') return this.resolve(outcome)
    if (code !== undefined && !this.responded) {
      void this.parts.answer(code).then(() => this.resolve('done'))
      return
    }
    // An answer broken off midway cannot be finished: the client's connection is cut.
    if (code !== undefined) exchange.destroy()
    // The client left (H27): logged as such, whatever the dyno had begun to answer.
    if (code === 'H27') record.status = 499
    this.parts.log(routerLogLine(record, code))
    this.resolve('done')
  }
}
