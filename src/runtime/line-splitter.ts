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

  /** Returns the held partial line, if any, ended with "\n". */
  flush(): Buffer | undefined {
    if (this.pending.length === 0) return undefined
    const block = Buffer.concat([...this.pending, NEWLINE_BUFFER])
    this.pending = []
    return block
  }
}

const NEWLINE_BUFFER = Buffer.from('\n')

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
