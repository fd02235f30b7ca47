const NEWLINE = 0x0a

/**
 * Cuts a byte stream into whole lines without decoding it, so bytes pass through unchanged
 * (invalid UTF-8 included) and a line of any length stays one line. The newline is not part of a
 * line. Bytes after the last newline are held until more arrive, `flush()` is called (on exit, or
 * when the stream has been idle), or the stream ends.
 */
export class LineSplitter {
  private pending: Buffer[] = []
  private pendingBytes = 0

  /** Returns the lines completed by `chunk`. */
  push(chunk: Buffer): Buffer[] {
    const lines: Buffer[] = []
    let start = 0
    let newline = chunk.indexOf(NEWLINE)
    if (newline !== -1 && this.pendingBytes > 0) {
      this.pending.push(chunk.subarray(0, newline))
      lines.push(Buffer.concat(this.pending))
      this.pending = []
      this.pendingBytes = 0
      start = newline + 1
      newline = chunk.indexOf(NEWLINE, start)
    }
    while (newline !== -1) {
      lines.push(chunk.subarray(start, newline))
      start = newline + 1
      newline = chunk.indexOf(NEWLINE, start)
    }
    if (start < chunk.length) {
      this.pending.push(chunk.subarray(start))
      this.pendingBytes += chunk.length - start
    }
    return lines
  }

  /** True when bytes without a final newline are held. */
  get hasPartial(): boolean {
    return this.pendingBytes > 0
  }

  /** Returns the held partial line, if any, as a line of its own. */
  flush(): Buffer[] {
    if (this.pendingBytes === 0) return []
    const line = Buffer.concat(this.pending)
    this.pending = []
    this.pendingBytes = 0
    return [line]
  }
}
