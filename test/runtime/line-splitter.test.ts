import fc from 'fast-check'
import {describe, expect, it} from 'vitest'

import {LineSplitter} from '../../src/runtime/line-splitter.js'

const text = (lines: Buffer[]) => lines.map((line) => line.toString('latin1'))

describe('LineSplitter', () => {
  it('cuts chunks into lines, holding a partial line until its newline arrives', () => {
    const splitter = new LineSplitter()
    expect(text(splitter.push(Buffer.from('one\ntw')))).toEqual(['one'])
    expect(splitter.hasPartial).toBe(true)
    expect(text(splitter.push(Buffer.from('o\n\nthr')))).toEqual(['two', ''])
    expect(text(splitter.push(Buffer.from('ee')))).toEqual([])
    expect(text(splitter.flush())).toEqual(['three'])
    expect(splitter.hasPartial).toBe(false)
    expect(splitter.flush()).toEqual([])
  })

  it('keeps bytes as they are, invalid UTF-8 included', () => {
    const splitter = new LineSplitter()
    const lines = splitter.push(Buffer.from([0xff, 0xfe, 0x0a, 0xc3]))
    expect(lines).toEqual([Buffer.from([0xff, 0xfe])])
    expect(splitter.push(Buffer.from([0x28, 0x0a]))).toEqual([Buffer.from([0xc3, 0x28])])
  })

  it('joins a line spread over many chunks into one', () => {
    const splitter = new LineSplitter()
    for (let i = 0; i < 100; i++) expect(splitter.push(Buffer.alloc(20_000, 'x'))).toEqual([])
    const [line] = splitter.push(Buffer.from('\n'))
    expect(line!.length).toBe(2_000_000)
  })

  it('gives the same lines however the stream is chunked', () => {
    fc.assert(
      fc.property(fc.uint8Array({maxLength: 300}), fc.array(fc.nat(300), {maxLength: 10}), (bytes, cuts) => {
        const data = Buffer.from(bytes)
        const splitter = new LineSplitter()
        const got: Buffer[] = []
        let from = 0
        for (const cut of [...cuts].sort((a, b) => a - b)) {
          const to = Math.min(cut, data.length)
          got.push(...splitter.push(data.subarray(from, to)))
          from = Math.max(from, to)
        }
        got.push(...splitter.push(data.subarray(from)), ...splitter.flush())
        const expected = data.length === 0 ? [] : data.toString('latin1').replace(/\n$/, '').split('\n')
        expect(text(got)).toEqual(expected)
      }),
      {numRuns: 1000},
    )
  })
})
