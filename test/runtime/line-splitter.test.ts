import fc from 'fast-check'
import {describe, expect, it} from 'vitest'

import {LineSplitter, linesOf, MAX_LINE_BYTES} from '../../src/runtime/line-splitter.js'

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

  it('joins a line spread over many chunks into one, up to MAX_LINE_BYTES', () => {
    const splitter = new LineSplitter()
    for (let i = 0; i < 3; i++) expect(splitter.push(Buffer.alloc(20_000, 'x'))).toBeUndefined()
    const block = splitter.push(Buffer.from('\n'))!
    expect(linesOf(block).map((line) => line.length)).toEqual([60_000])
  })

  it('hands out a line longer than MAX_LINE_BYTES in pieces, holding no more than that', () => {
    const splitter = new LineSplitter()
    const lines: Buffer[] = []
    for (let i = 0; i < 100; i++) {
      const block = splitter.push(Buffer.alloc(20_000, 'x'))
      if (block) lines.push(...linesOf(block))
    }
    lines.push(...linesOf(splitter.push(Buffer.from('\n'))!))
    expect(lines.every((line) => line.length <= MAX_LINE_BYTES)).toBe(true)
    expect(lines.reduce((sum, line) => sum + line.length, 0)).toBe(2_000_000)
    expect(lines.length).toBe(Math.ceil(2_000_000 / MAX_LINE_BYTES))
    expect(splitter.hasPartial).toBe(false)
  })

  it('cuts a long line before a UTF-8 character, never inside it', () => {
    const splitter = new LineSplitter(8)
    // Seven bytes, then a two-byte character that would be cut at the eighth.
    expect(splitter.push(Buffer.from('abcdefgé'))).toEqual(Buffer.from('abcdefg\n'))
    expect(splitter.push(Buffer.from('h\n'))).toEqual(Buffer.from('éh\n'))
    // A chunk of many lines, one of them long, in a single push.
    expect(splitter.push(Buffer.from('ab\n0123456789\ncd\nef'))).toEqual(Buffer.from('ab\n01234567\n89\ncd\n'))
    expect(splitter.flush()).toEqual(Buffer.from('ef\n'))
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

  it('cuts long lines at the same places however the stream is chunked, losing no byte', () => {
    fc.assert(
      fc.property(fc.uint8Array({maxLength: 300}), fc.array(fc.nat(300), {maxLength: 10}), fc.integer({min: 4, max: 40}), (bytes, cuts, max) => {
        const data = Buffer.from(bytes)
        const split = (points: number[]) => {
          const splitter = new LineSplitter(max)
          const blocks: Buffer[] = []
          let from = 0
          for (const to of [...points.map((cut) => Math.min(cut, data.length)).sort((a, b) => a - b), data.length]) {
            const block = splitter.push(data.subarray(from, Math.max(from, to)))
            if (block) blocks.push(block)
            from = Math.max(from, to)
          }
          const rest = splitter.flush()
          if (rest) blocks.push(rest)
          return blocks.flatMap(linesOf)
        }
        const lines = split(cuts)
        expect(lines).toEqual(split([]))
        expect(lines.every((line) => line.length <= max)).toBe(true)
        const withoutNewlines = (buffer: Buffer) => buffer.toString('latin1').replaceAll('\n', '')
        expect(lines.map((line) => line.toString('latin1')).join('')).toBe(withoutNewlines(data))
      }),
      {numRuns: 1000},
    )
  })
})
