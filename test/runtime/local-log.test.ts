import {PassThrough, Writable} from 'node:stream'

import {describe, expect, it} from 'vitest'

import {LocalLog} from '../../src/runtime/local-log.js'

/** The line without its time. */
const untimed = (line: string) => line.replace(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00 /, '')

describe('LocalLog', () => {
  it('keeps the last lines in the agent format, colours stripped, long lines cut in pieces of 10,000', () => {
    const log = new LocalLog(5)
    log.appendBlock('app', 'web.1', Buffer.from('\u001B[31mred\u001B[39m\r\nplain\n'))
    log.append('dev', 'dev', 'scaling to web=2')
    log.append('router', undefined, 'at=info method=GET')
    log.append('app', 'web.2', 'x'.repeat(25_000))
    const recent = log.recent({lines: 10})
    expect(recent).toHaveLength(5)
    expect(recent.map(untimed)).toEqual(['dev[dev]: scaling to web=2', 'router: at=info method=GET', `app[web.2]: ${'x'.repeat(10_000)}`, `app[web.2]: ${'x'.repeat(10_000)}`, `app[web.2]: ${'x'.repeat(5000)}`])
    expect(log.recent({lines: 1, ps: 'web.1'})).toEqual([])
  })

  it('filters by source, by process, by process type, and the router by ps=router', () => {
    const log = new LocalLog()
    log.append('app', 'web.1', 'a')
    log.append('dev', 'web.1', 'started')
    log.append('app', 'web.12', 'b')
    log.append('app', 'worker.1', 'c')
    log.append('router', undefined, 'at=info')
    const texts = (filter: Parameters<LocalLog['recent']>[0]) => log.recent(filter).map(untimed)
    expect(texts({lines: 10, ps: 'web.1'})).toEqual(['app[web.1]: a', 'dev[web.1]: started'])
    expect(texts({lines: 10, ps: 'web'})).toEqual(['app[web.1]: a', 'dev[web.1]: started', 'app[web.12]: b'])
    expect(texts({lines: 10, source: 'app', ps: 'web'})).toEqual(['app[web.1]: a', 'app[web.12]: b'])
    expect(texts({lines: 10, ps: 'router'})).toEqual(['router: at=info'])
  })

  it('gives a live reader each new line that passes its filter, and ends it on close', async () => {
    const log = new LocalLog()
    const out = new PassThrough()
    let text = ''
    out.on('data', (chunk: Buffer) => (text += chunk.toString()))
    log.subscribe({ps: 'web'}, out)
    log.append('app', 'web.1', 'one')
    log.append('app', 'worker.1', 'not this')
    log.append('app', 'web.2', 'two')
    log.close()
    await new Promise((resolve) => out.once('end', resolve))
    expect(text.split('\n').filter(Boolean).map(untimed)).toEqual(['app[web.1]: one', 'app[web.2]: two'])
  })

  it('drops what a slow reader cannot take, says how many, and never waits for it', async () => {
    const log = new LocalLog()
    let text = ''
    let held: (() => void) | undefined
    let flowing = false
    const out = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _encoding, done) {
        text += chunk.toString()
        if (flowing) done()
        else held = done
      },
    })
    log.subscribe({}, out)
    for (let i = 0; i < 3000; i++) log.append('app', 'web.1', `line ${i}`)
    flowing = true
    const drained = new Promise((resolve) => out.once('drain', resolve))
    held!()
    await drained
    log.append('app', 'web.1', 'after')
    const lines = text.split('\n').filter(Boolean).map(untimed)
    const note = lines.findIndex((line) => line.startsWith('dev[dev]: Error L11'))
    const dropped = Number(/^dev\[dev\]: Error L11 \(Tail buffer overflow\) -> This tail session dropped (\d+) messages$/.exec(lines[note]!)![1])
    expect(dropped).toBeGreaterThan(0)
    expect(lines.length - 2 + dropped).toBe(3000)
    expect(lines.slice(note - 1, note)).toEqual([`app[web.1]: line ${3000 - dropped - 1}`])
    expect(lines.at(-1)).toBe('app[web.1]: after')
  })
})
