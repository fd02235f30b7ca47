import fc from 'fast-check'
import {describe, expect, it} from 'vitest'

import {LineSplitter, linesOf} from '../../src/runtime/line-splitter.js'

const text = (block: Buffer | undefined) => (block === undefined ? undefined : block.toString('latin1'))

describe('LineSplitter', () => {
  it('hands out whole lines, holding a partial line until its newline arrives', () => {
    const splitter = new LineSplitter()
    expect(text(splitter.push(Buffer.from('one\ntw')))).toBe('one\n')
    expect(splitter.hasPartial).toBe(true)
    expect(text(splitter.push(Buffer.from('o\n\nthr')))).toBe('two\n\n')
    expect(splitter.push(Buffer.from('ee'))).toBeUndefined()
    expect(text(splitter.flush())).toBe('three\n')
    expect(splitter.hasPartial).toBe(false)
    expect(splitter.flush()).toBeUndefined()
  })

  it('keeps bytes as they are, invalid UTF-8 included', () => {
    const splitter = new LineSplitter()
    expect(splitter.push(Buffer.from([0xff, 0xfe, 0x0a, 0xc3]))).toEqual(Buffer.from([0xff, 0xfe, 0x0a]))
    expect(splitter.push(Buffer.from([0x28, 0x0a]))).toEqual(Buffer.from([0xc3, 0x28, 0x0a]))
  })

  it('does not cut a UTF-8 character in two when the stream goes quiet mid-character', () => {
    const splitter = new LineSplitter()
    expect(splitter.push(Buffer.from([0x77, 0xc3]))).toBeUndefined()
    expect(splitter.flush({keepSplitCharacter: true})).toEqual(Buffer.from('w\n'))
    expect(splitter.push(Buffer.from([0xb6, 0x72, 0x0a]))).toEqual(Buffer.from('ör\n'))
    expect(splitter.push(Buffer.from([0xe2, 0x82]))).toBeUndefined()
    expect(splitter.flush({keepSplitCharacter: true})).toBeUndefined()
    // When the stream ends, whatever is held comes out as it is.
    expect(splitter.flush()).toEqual(Buffer.from([0xe2, 0x82, 0x0a]))
  })

  it('joins a line spread over many chunks into one', () => {
    const splitter = new LineSplitter()
    for (let i = 0; i < 100; i++) expect(splitter.push(Buffer.alloc(20_000, 'x'))).toBeUndefined()
    const block = splitter.push(Buffer.from('\n'))!
    expect(linesOf(block).map((line) => line.length)).toEqual([2_000_000])
  })

  it('gives the same lines however the stream is chunked', () => {
    fc.assert(
      fc.property(fc.uint8Array({maxLength: 300}), fc.array(fc.nat(300), {maxLength: 10}), (bytes, cuts) => {
        const data = Buffer.from(bytes)
        const splitter = new LineSplitter()
        const blocks: Buffer[] = []
        let from = 0
        for (const cut of [...cuts].sort((a, b) => a - b)) {
          const to = Math.min(Math.max(cut, from), data.length)
          const block = splitter.push(data.subarray(from, to))
          if (block) blocks.push(block)
          from = to
        }
        for (const block of [splitter.push(data.subarray(from)), splitter.flush()]) if (block) blocks.push(block)
        const lines = blocks.flatMap((block) => linesOf(block).map((line) => line.toString('latin1')))
        const expected = data.length === 0 ? [] : data.toString('latin1').replace(/\n$/, '').split('\n')
        expect(lines).toEqual(expected)
        expect(blocks.every((block) => block.at(-1) === 0x0a)).toBe(true)
      }),
      {numRuns: 1000},
    )
  })
})
