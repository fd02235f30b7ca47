const NEWLINE = 0x0a

/**
 * The longest line handed out, newline not counted: a longer line comes out in pieces of at most
 * this many bytes, so a process that writes without newlines never makes us hold more than this.
 */
export const MAX_LINE_BYTES = 64 * 1024

/**
 * Cuts a byte stream at line ends without decoding it, so bytes pass through unchanged (invalid
 * UTF-8 included). It hands out blocks of whole lines, each line ending in "\n", with no per-line
 * allocation: a block is the held partial line plus the chunk up to its last newline. Bytes after
 * the last newline are held until more arrive, or until `flush()` (on exit, or when the stream has
 * been idle) hands them out as a line of their own. A line longer than `maxLineBytes` is cut into
 * pieces of that length or a little less, never inside a UTF-8 character.
 */
export class LineSplitter {
  private pending: Buffer[] = []
  private pendingBytes = 0

  /** `maxLineBytes` must be at least 4, the longest UTF-8 character. */
  constructor(private readonly maxLineBytes = MAX_LINE_BYTES) {}

  /** Returns the whole lines completed by `chunk`, or undefined when it completes none. */
  push(chunk: Buffer): Buffer | undefined {
    const first = chunk.indexOf(NEWLINE)
    // Only a line that began in the held bytes, or one in a chunk longer than a line, can be too long.
    if (chunk.length > this.maxLineBytes || this.pendingBytes + (first === -1 ? chunk.length : first) > this.maxLineBytes) return this.pushCutting(chunk)
    const last = first === -1 ? -1 : chunk.lastIndexOf(NEWLINE)
    if (last === -1) {
      if (chunk.length > 0) this.pending.push(chunk)
      this.pendingBytes += chunk.length
      return undefined
    }
    let block = chunk.subarray(0, last + 1)
    if (this.pending.length > 0) {
      this.pending.push(block)
      block = Buffer.concat(this.pending)
    }
    this.hold(chunk.subarray(last + 1))
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
    this.hold(held.subarray(held.length - keep))
    if (keep === held.length) return undefined
    return Buffer.concat([held.subarray(0, held.length - keep), NEWLINE_BUFFER])
  }

  /** push() when a line may pass maxLineBytes: each line is looked at, and a long one cut up. */
  private pushCutting(chunk: Buffer): Buffer | undefined {
    const bytes = Buffer.concat([...this.pending, chunk])
    const max = this.maxLineBytes
    const pieces: Buffer[] = []
    // Lines from `copied` up to `start` are short, and go out as they are, in one piece.
    let copied = 0
    let start = 0
    let end = bytes.indexOf(NEWLINE)
    for (;;) {
      if ((end === -1 ? bytes.length : end) - start > max) {
        const cut = start + max - incompleteUtf8Tail(bytes.subarray(start, start + max))
        pieces.push(bytes.subarray(copied, cut), NEWLINE_BUFFER)
        start = copied = cut
        continue
      }
      if (end === -1) break
      start = end + 1
      end = bytes.indexOf(NEWLINE, start)
    }
    if (copied < start) pieces.push(bytes.subarray(copied, start))
    this.hold(bytes.subarray(start))
    return pieces.length === 0 ? undefined : Buffer.concat(pieces)
  }

  private hold(partial: Buffer): void {
    this.pending = partial.length > 0 ? [partial] : []
    this.pendingBytes = partial.length
  }
}

const NEWLINE_BUFFER = Buffer.from('\n')

/** How many bytes at the end of `bytes` start a UTF-8 character that is not complete yet. */
export function incompleteUtf8Tail(bytes: Buffer): number {
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
