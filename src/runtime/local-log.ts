import type {Writable} from 'node:stream'
import {stripVTControlCharacters} from 'node:util'

import {DEFAULT_MEMORY_LINES, formatLogLine, MAX_ENTRY_BYTES, nowMicros} from '../agent/app-log.js'
import {matchesLogFilter, type LogFilter} from './log-filter.js'
import {LogTail} from './log-tail.js'

/** Who wrote a line: a process (`app`), dev itself (`dev`), or the --router (`router`). */
export type LocalLogSource = 'app' | 'dev' | 'router'

export const LOCAL_LOG_SOURCES: readonly LocalLogSource[] = ['app', 'dev', 'router']

/** The `ps` of dev's lines that are about no one process. */
export const DEV_PS = 'dev'

export type LocalLogFilter = LogFilter<LocalLogSource>

interface Entry {
  /** Microseconds since the epoch. */
  time: number
  source: LocalLogSource
  ps?: string
  /** The whole line as sent, without its newline. */
  line: string
}

/** Output as it came, not yet split into entries (see LocalLog.blocks). */
interface Block {
  time: number
  source: LocalLogSource
  ps?: string
  text: string | Buffer
}

/** Kept output is trimmed to what the last lines need once it passes either of these. */
const TRIM_BYTES = 1024 * 1024
const TRIM_BLOCKS = 4096

/**
 * The log of a running `dev start` as the control socket serves it: the lines it prints, in the
 * host agent's format (`2026-11-22T07:38:45.079241+00:00 app[web.1]: text`), colours stripped. The
 * last lines are kept in memory only, and live readers get new lines as they come; appending never
 * waits, whatever the readers' pace.
 */
export class LocalLog {
  /** The last `capacity` entries, as a ring: entry N is at N % capacity. */
  private readonly entries: Entry[] = []
  /** How many entries were ever added. */
  private added = 0
  private readonly tails = new Map<LogTail, LocalLogFilter>()
  /**
   * While nobody reads, output is kept as it came (enough blocks for the last `capacity` lines)
   * and split, stripped and formatted only when asked for: relaying a flood costs no formatting.
   */
  private blocks: Block[] = []
  private keptBytes = 0

  constructor(private readonly capacity = DEFAULT_MEMORY_LINES) {}

  /** Adds `text` (several lines become several entries with the same time). */
  append(source: LocalLogSource, ps: string | undefined, text: string | Buffer): void {
    const time = nowMicros()
    if (this.tails.size > 0) return this.addLines(time, source, ps, text.toString())
    this.blocks.push({time, source, ps, text})
    this.keptBytes += text.length
    if (this.keptBytes > TRIM_BYTES || this.blocks.length > TRIM_BLOCKS) this.trim()
  }

  /** Keeps only the newest blocks that hold the last `capacity` lines (counted only now, newest first). */
  private trim(): void {
    let lines = 0
    let keep = this.blocks.length
    while (keep > 0 && lines < this.capacity) lines += newlines(this.blocks[--keep]!.text)
    this.blocks = this.blocks.slice(keep)
    this.keptBytes = this.blocks.reduce((sum, block) => sum + block.text.length, 0)
  }

  /** Adds a block of whole lines of a process's output, each ending in "\n". */
  appendBlock(source: LocalLogSource, ps: string | undefined, block: Buffer): void {
    this.append(source, ps, block)
  }

  /** Turns the kept blocks into entries, oldest first. */
  private flush(): void {
    const blocks = this.blocks
    this.blocks = []
    this.keptBytes = 0
    for (const block of blocks) this.addLines(block.time, block.source, block.ps, block.text.toString())
  }

  private addLines(time: number, source: LocalLogSource, ps: string | undefined, text: string): void {
    let lines = stripVTControlCharacters(text).replace(/\n$/, '').split('\n')
    // With no live reader only the last lines can matter: a flood of output costs no formatting.
    if (this.tails.size === 0 && lines.length > this.capacity) lines = lines.slice(-this.capacity)
    const prefix = formatLogLine(time, source, ps, '')
    for (const line of lines) for (const piece of piecesOf(line.replace(/\r$/, ''))) this.add({time, source, ps, line: prefix + piece})
  }

  /** The last `lines` lines that pass `filter`, oldest first. */
  recent({lines, ...filter}: {lines: number} & LocalLogFilter): string[] {
    this.flush()
    const found: string[] = []
    for (let at = this.added - 1; at >= Math.max(0, this.added - this.capacity) && found.length < lines; at--) {
      const entry = this.entries[at % this.capacity]!
      if (matchesLogFilter(entry, filter)) found.push(entry.line)
    }
    return found.reverse()
  }

  /** Writes each new line that passes `filter` to `out` until `out` closes or fails, or the returned function is called. */
  subscribe(filter: LocalLogFilter, out: Writable): () => void {
    if (out.destroyed || out.writableEnded) return () => {}
    this.flush()
    const tail: LogTail = new LogTail(out, (dropped, time) => formatLogLine(time, 'dev', DEV_PS, `Error L11 (Tail buffer overflow) -> This tail session dropped ${dropped} messages`), () => this.tails.delete(tail))
    this.tails.set(tail, filter)
    return tail.end
  }

  /** Ends the live readers' streams, with what they have queued. */
  close(): void {
    for (const tail of this.tails.keys()) tail.finish()
  }

  private add(entry: Entry): void {
    this.entries[this.added++ % this.capacity] = entry
    for (const [tail, filter] of this.tails) if (matchesLogFilter(entry, filter)) tail.send(entry.line, entry.time)
  }
}

/** How many "\n" `text` holds. */
function newlines(text: string | Buffer): number {
  let count = 0
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) count++
  // Text that ends without one still makes a line.
  return text.length > 0 && text[text.length - 1] !== (typeof text === 'string' ? '\n' : 10) ? count + 1 : count
}

/** A long line as lines of at most MAX_ENTRY_BYTES characters (never between a surrogate pair), as the agent cuts them. */
function piecesOf(line: string): string[] {
  if (line.length <= MAX_ENTRY_BYTES) return [line]
  const pieces: string[] = []
  for (let start = 0; start < line.length; ) {
    let end = Math.min(line.length, start + MAX_ENTRY_BYTES)
    if (end < line.length && /[\uD800-\uDBFF]/.test(line[end - 1]!)) end--
    pieces.push(line.slice(start, end))
    start = end
  }
  return pieces
}
