const NEWLINE = 0x0a

/**
 * Cuts a byte stream at line ends without decoding it, so bytes pass through unchanged (invalid
 * UTF-8 included) and a line of any length stays one line. It hands out blocks of whole lines,
 * each line ending in "\n", with no per-line allocation: a block is the held partial line plus the
 * chunk up to its last newline. Bytes after the last newline are held until more arrive, or until
 * `flush()` (on exit, or when the stream has been idle) hands them out as a line of their own.
 */
export class LineSplitter {
  private pending: Buffer[] = []

  /** Returns the whole lines completed by `chunk`, or undefined when it completes none. */
  push(chunk: Buffer): Buffer | undefined {
    const last = chunk.lastIndexOf(NEWLINE)
    if (last === -1) {
      if (chunk.length > 0) this.pending.push(chunk)
      return undefined
    }
    let block = chunk.subarray(0, last + 1)
    if (this.pending.length > 0) {
      this.pending.push(block)
      block = Buffer.concat(this.pending)
      this.pending = []
    }
    if (last + 1 < chunk.length) this.pending.push(chunk.subarray(last + 1))
    return block
  }

  /** True when bytes without a final newline are held. */
  get hasPartial(): boolean {
    return this.pending.length > 0
  }

  /**
   * Returns the held partial line, if any, ended with "\n". With `keepSplitCharacter` (a flush
   * because the stream went quiet, not because it ended), the first bytes of a UTF-8 character
   * whose other bytes have not arrived yet stay held, so the character is not cut in two.
   */
  flush(options: {keepSplitCharacter?: boolean} = {}): Buffer | undefined {
    if (this.pending.length === 0) return undefined
    const held = Buffer.concat(this.pending)
    const keep = options.keepSplitCharacter ? incompleteUtf8Tail(held) : 0
    this.pending = keep > 0 ? [held.subarray(held.length - keep)] : []
    if (keep === held.length) return undefined
    return Buffer.concat([held.subarray(0, held.length - keep), NEWLINE_BUFFER])
  }
}

const NEWLINE_BUFFER = Buffer.from('\n')

/** How many bytes at the end of `bytes` start a UTF-8 character that is not complete yet. */
function incompleteUtf8Tail(bytes: Buffer): number {
  for (let back = 1; back <= Math.min(4, bytes.length); back++) {
    const byte = bytes[bytes.length - back]!
    if ((byte & 0xc0) === 0x80) continue
    const size = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1
    return size > back ? back : 0
  }
  return 0
}

/** The lines of a block of whole lines, without their newlines. */
export function linesOf(block: Buffer): Buffer[] {
  const lines: Buffer[] = []
  let start = 0
  for (let end = block.indexOf(NEWLINE); end !== -1; end = block.indexOf(NEWLINE, start)) {
    lines.push(block.subarray(start, end))
    start = end + 1
  }
  return lines
}
