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

  it('keeps exactly the last lines across many blocks of output, with the time each block came', () => {
    const log = new LocalLog(100)
    const times: string[] = []
    for (let block = 0; block < 50; block++) {
      const lines = Array.from({length: 7}, (_, i) => `b${block} l${i}`).join('\n')
      // Whole lines, and the last block without its final newline.
      log.appendBlock('app', block % 2 === 0 ? 'web.1' : 'worker.1', Buffer.from(block === 49 ? lines : `${lines}\n`))
    }
    const recent = log.recent({lines: 1000})
    expect(recent).toHaveLength(100)
    expect(untimed(recent[0]!)).toBe('app[worker.1]: b35 l5')
    expect(untimed(recent.at(-1)!)).toBe('app[worker.1]: b49 l6')
    for (const line of recent) times.push(line.slice(0, 32))
    expect([...times].sort()).toEqual(times)
    // Read twice, the same; what comes after a read joins it in order.
    expect(log.recent({lines: 1000})).toEqual(recent)
    log.append('dev', 'dev', 'later')
    expect(log.recent({lines: 2}).map(untimed)).toEqual(['app[worker.1]: b49 l6', 'dev[dev]: later'])
    expect(log.recent({lines: 3, ps: 'web'}).map(untimed)).toEqual(['app[web.1]: b48 l4', 'app[web.1]: b48 l5', 'app[web.1]: b48 l6'])
  })

  it('keeps the last lines however many blocks and bytes pass through it', () => {
    const log = new LocalLog(100)
    for (let i = 0; i < 5000; i++) log.appendBlock('app', 'web.1', Buffer.from(`one ${i}\n`))
    expect(log.recent({lines: 1000}).map(untimed)).toEqual(Array.from({length: 100}, (_, i) => `app[web.1]: one ${4900 + i}`))
    // Blocks of 64 KiB, 1,000 lines each: 3 MiB in all.
    for (let block = 0; block < 48; block++) log.appendBlock('app', 'web.2', Buffer.from(Array.from({length: 1000}, (_, i) => `${block}:${String(i).padStart(60, '.')}\n`).join('')))
    const recent = log.recent({lines: 1000}).map(untimed)
    expect(recent).toHaveLength(100)
    expect(recent[0]).toBe(`app[web.2]: 47:${'900'.padStart(60, '.')}`)
    expect(recent.at(-1)).toBe(`app[web.2]: 47:${'999'.padStart(60, '.')}`)
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
