import {describe, expect, it} from 'vitest'

import {LOCAL_BACKOFF, RestartBackoff} from '../../src/runtime/restart-backoff.js'
import {RestartLimiter} from '../../src/runtime/restart-limiter.js'

describe('RestartBackoff', () => {
  it('restarts at once, then after 1 s, 2 s, 4 s … capped at 30 s', () => {
    const backoff = new RestartBackoff(LOCAL_BACKOFF)
    const delays = Array.from({length: 9}, () => backoff.next(100).delayMs)
    expect(delays).toEqual([0, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000])
  })

  it('starts over after 60 s of uptime', () => {
    const backoff = new RestartBackoff(LOCAL_BACKOFF)
    backoff.next(10)
    backoff.next(10)
    expect(backoff.next(59_999)).toEqual({delayMs: 2000, attempt: 3})
    expect(backoff.next(60_000)).toEqual({delayMs: 0, attempt: 1})
  })
})

describe('RestartLimiter', () => {
  it('allows 10 restarts in any minute, then refuses until the window moves on', () => {
    const limiter = new RestartLimiter(10, 60_000)
    for (let i = 0; i < 10; i++) expect(limiter.tryRecord(i * 1000)).toBe(true)
    expect(limiter.tryRecord(30_000)).toBe(false)
    expect(limiter.tryRecord(59_999)).toBe(false)
    expect(limiter.tryRecord(60_000)).toBe(true)
  })
})
