import {closeSync, fstatSync, mkdirSync, openSync, readSync} from 'node:fs'
import {open, rename, rm, type FileHandle} from 'node:fs/promises'
import {join} from 'node:path'
import type {Writable} from 'node:stream'

import {incompleteUtf8Tail} from '../runtime/line-splitter.js'
import {matchesLogFilter, type LogFilter as AnyLogFilter} from '../runtime/log-filter.js'
import {LogTail} from '../runtime/log-tail.js'
import type {LogSink, LogSource} from './log-sink.js'

export const LOG_SOURCES: readonly LogSource[] = ['app', 'agent', 'router']

export type LogFilter = AnyLogFilter<LogSource>

export interface LogEntry {
  /** Microseconds since the epoch. */
  time: number
  source: LogSource
  /** The dyno (`web.1`), or what part of the agent spoke (`api`); none for the router. */
  ps?: string
  /** The whole line as stored and sent, without its newline. */
  line: string
}

export interface AppLogOptions {
  /** How many recent lines are kept in memory (and reloaded from the files on start). */
  memoryLines?: number
  /** The size `app.log` is rotated before it would pass. */
  fileBytes?: number
  /** How many files are kept: `app.log` and `app.log.1` … `app.log.{files-1}`. */
  files?: number
  /** How many bytes may wait for the disk; past that, lines are left out of the files (L12). */
  writeQueueBytes?: number
}

/** DESIGN.md "Defaults": at least 1,500 lines in memory per app, files rotated 10 MiB × 5. */
export const DEFAULT_MEMORY_LINES = 1500
const DEFAULT_FILE_BYTES = 10 * 1024 ** 2
const DEFAULT_FILES = 5
const DEFAULT_WRITE_QUEUE_BYTES = 1024 ** 2

/**
 * The most bytes of text one entry holds: a longer line becomes several entries, as Heroku splits
 * a dyno's long line into 10,000-byte pieces, so the lines kept in memory stay bounded.
 */
export const MAX_ENTRY_BYTES = 10_000

/**
 * The merged log stream of one app (Heroku's logplex in small): dyno output, agent events and
 * router lines as `2026-11-22T10:00:00.123456+00:00 app[web.1]: text`. The recent lines are kept in
 * memory, every line goes to rotated files under `dir`, and live readers get new lines as they come.
 * Appending never waits and never throws: a slow disk or a slow reader costs lines, not memory.
 */
export class AppLog implements LogSink {
  private readonly memory: Ring<LogEntry>
  private readonly file: RotatingLogFile
  private readonly tails = new Map<LogTail, LogFilter>()

  constructor(dir: string, options: AppLogOptions = {}) {
    const memoryLines = options.memoryLines ?? DEFAULT_MEMORY_LINES
    this.memory = new Ring(memoryLines)
    const limits = {fileBytes: options.fileBytes ?? DEFAULT_FILE_BYTES, files: options.files ?? DEFAULT_FILES, writeQueueBytes: options.writeQueueBytes ?? DEFAULT_WRITE_QUEUE_BYTES}
    this.file = new RotatingLogFile(dir, limits, (dropped) =>
      this.append('agent', 'log', `Error L12 (Local buffer overflow) -> The log files missed ${dropped} messages: the disk could not keep up`),
    )
    // The history survives an agent restart.
    for (const line of this.file.tail(memoryLines)) {
      const entry = parseLogLine(line)
      if (entry) this.memory.push(entry)
    }
  }

  /**
   * Adds `text` (one line; several lines, or a line longer than MAX_ENTRY_BYTES, become several
   * entries with the same time).
   */
  append(source: LogSource, ps: string | undefined, text: string): void {
    const time = nowMicros()
    // One short line (a router line, an agent event): no splitting.
    if (text.length * 3 <= MAX_ENTRY_BYTES && !text.includes('\n')) return this.add({time, source, ps, line: formatLogLine(time, source, ps, text)})
    for (const line of text.replace(/\n$/, '').split('\n')) {
      for (const piece of piecesOf(line)) this.add({time, source, ps, line: formatLogLine(time, source, ps, piece)})
    }
  }

  /** Adds a block of whole lines, each ending in "\n", as a dyno's output arrives. */
  appendBlock(source: LogSource, ps: string | undefined, block: Buffer): void {
    this.append(source, ps, block.toString('utf8'))
  }

  /** The last `lines` lines that pass `filter`, oldest first. */
  recent({lines, ...filter}: {lines: number} & LogFilter): string[] {
    const found: string[] = []
    for (const entry of this.memory.newestFirst()) {
      if (found.length >= lines) break
      if (matchesLogFilter(entry, filter)) found.push(entry.line)
    }
    return found.reverse()
  }

  /**
   * Writes each new line that passes `filter` to `out` until the returned function is called or
   * `out` closes or fails. A slow `out` never holds up the log: see LogTail.
   */
  subscribe(filter: LogFilter, out: Writable): () => void {
    if (out.destroyed || out.writableEnded) return () => {}
    const tail: LogTail = new LogTail(out, (dropped, time) => formatLogLine(time, 'agent', 'log', `Error L11 (Tail buffer overflow) -> This tail session dropped ${dropped} messages`), () => this.tails.delete(tail))
    this.tails.set(tail, filter)
    return tail.end
  }

  /** How many live readers are subscribed. */
  get liveTails(): number {
    return this.tails.size
  }

  /** Ends the live readers' streams and writes what is queued to the files. Appends still reach memory. */
  async close(): Promise<void> {
    for (const tail of this.tails.keys()) tail.finish()
    await this.file.close()
  }

  private add(entry: LogEntry): void {
    this.memory.push(entry)
    this.file.write(entry.line)
    for (const [tail, filter] of this.tails) if (matchesLogFilter(entry, filter)) tail.send(entry.line, entry.time)
  }
}

let lastMicros = 0

/** Now in µs since the epoch, from the monotonic clock: never earlier than a time given before. */
export function nowMicros(): number {
  lastMicros = Math.max(lastMicros, Math.floor((performance.timeOrigin + performance.now()) * 1000))
  return lastMicros
}

/** `2026-11-22T10:00:00.123456+00:00`: RFC 3339 in UTC with microseconds, as Heroku prints it. */
export function formatLogTime(micros: number): string {
  const second = Math.floor(micros / 1_000_000)
  // Lines come thousands a second under load: the date part is made once per second.
  if (second !== formattedSecond.second) formattedSecond = {second, text: new Date(second * 1000).toISOString().slice(0, 19)}
  return `${formattedSecond.text}.${String(micros % 1_000_000).padStart(6, '0')}+00:00`
}

let formattedSecond = {second: -1, text: ''}

/** A line of the log as stored and sent; dev start's log (LocalLog) has sources of its own. */
export function formatLogLine(micros: number, source: string, ps: string | undefined, text: string): string {
  return `${formatLogTime(micros)} ${source}${ps === undefined ? '' : `[${ps}]`}: ${text}`
}

const STORED_LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{6})\+00:00 (app|agent|router)(?:\[([^\]]+)\])?: /

/** The entry of a line as formatLogLine wrote it, or undefined for anything else. */
export function parseLogLine(line: string): LogEntry | undefined {
  const match = STORED_LINE.exec(line)
  if (!match) return undefined
  return {time: Date.parse(`${match[1]}Z`) * 1000 + Number(match[2]), source: match[3] as LogSource, ps: match[4], line}
}

/** `line` cut into pieces of at most MAX_ENTRY_BYTES of UTF-8, never inside a character. */
function piecesOf(line: string): string[] {
  // No character takes more than 3 UTF-8 bytes per UTF-16 unit: most lines need no encoding at all.
  if (line.length * 3 <= MAX_ENTRY_BYTES) return [line]
  const bytes = Buffer.from(line)
  const pieces: string[] = []
  for (let start = 0; start < bytes.length; ) {
    const piece = bytes.subarray(start, start + MAX_ENTRY_BYTES)
    const end = start + piece.length - (piece.length < MAX_ENTRY_BYTES ? 0 : incompleteUtf8Tail(piece))
    pieces.push(bytes.toString('utf8', start, end))
    start = end
  }
  return pieces
}

/** The last `capacity` items pushed. */
class Ring<T> {
  private readonly items: T[] = []
  private oldest = 0

  constructor(private readonly capacity: number) {}

  push(item: T): void {
    if (this.items.length < this.capacity) {
      this.items.push(item)
    } else {
      this.items[this.oldest] = item
      this.oldest = (this.oldest + 1) % this.capacity
    }
  }

  *newestFirst(): Generator<T> {
    for (let back = this.items.length - 1; back >= 0; back--) yield this.items[(this.oldest + back) % this.items.length]!
  }
}

/**
 * The log files of one app: `app.log`, rotated before it would pass `fileBytes` to `app.log.1` …
 * `app.log.{files-1}` (the oldest deleted), mode 0600 in a 0700 directory. Lines are queued and
 * written in the background a batch at a time (gathered for up to GATHER_MS); past
 * `writeQueueBytes` they are dropped and counted (`onDropped` is told how many once the queue is
 * written), so a slow or full disk costs lines, never memory. A disk error is told once on stderr; later batches try again.
 */
class RotatingLogFile {
  private handle?: FileHandle
  private size = 0
  /** Lines waiting for the disk (without their newlines), and the bytes each takes there. */
  private queue: string[] = []
  private queueBytes: number[] = []
  private queuedBytes = 0
  private dropped = 0
  private writing?: Promise<void>
  /** The wait for more lines, ended early by a big enough queue or by close(). */
  private gathering?: {timer: NodeJS.Timeout; resolve: () => void}
  private closing = false
  private closed = false
  private warned = false

  constructor(
    private readonly dir: string,
    private readonly limits: {fileBytes: number; files: number; writeQueueBytes: number},
    private readonly onDropped: (count: number) => void,
  ) {
    try {
      mkdirSync(dir, {recursive: true, mode: 0o700})
    } catch (error) {
      this.warn(error)
    }
  }

  /** The last `count` lines on disk, oldest first. */
  tail(count: number): string[] {
    const lines: string[] = []
    for (let index = 0; index < this.limits.files && lines.length < count; index++) {
      try {
        lines.unshift(...tailOfFile(this.path(index), count - lines.length))
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.warn(error)
      }
    }
    return lines
  }

  write(line: string): void {
    if (this.closed) return
    // Kept as a string: one buffer is made per batch, not per line (the router writes one per request).
    const bytes = Buffer.byteLength(line) + 1
    if (this.queuedBytes + bytes > this.limits.writeQueueBytes) {
      this.dropped++
      return
    }
    this.queue.push(line)
    this.queueBytes.push(bytes)
    this.queuedBytes += bytes
    // A quarter of the queue's room is enough for one write: the rest takes lines meanwhile.
    if (this.queuedBytes * 4 >= this.limits.writeQueueBytes) this.stopGathering()
    this.startWriting()
  }

  /** Resolves when everything queued is written; later writes are ignored. */
  async close(): Promise<void> {
    this.closing = true
    this.stopGathering()
    while (this.writing) await this.writing
    this.closed = true
    await this.handle?.close().catch((error: unknown) => this.warn(error))
    this.handle = undefined
  }

  private startWriting(): void {
    if (this.writing) return
    this.writing = this.writeQueue().finally(() => {
      this.writing = undefined
      // A line queued after the loop's last look, before this callback, still gets written.
      if (this.queue.length > 0) this.startWriting()
    })
  }

  private async writeQueue(): Promise<void> {
    while (this.queue.length > 0) {
      await this.gather()
      await this.writeBatch()
      if (this.queue.length === 0 && this.dropped > 0) {
        const dropped = this.dropped
        this.dropped = 0
        this.onDropped(dropped)
      }
    }
  }

  /** Waits GATHER_MS for more lines, unless the queue is big enough already or the file is closing. */
  private gather(): Promise<void> {
    if (this.closing || this.queuedBytes * 4 >= this.limits.writeQueueBytes) return Promise.resolve()
    return new Promise((resolve) => (this.gathering = {timer: setTimeout(() => this.stopGathering(), GATHER_MS), resolve}))
  }

  private stopGathering(): void {
    const gathering = this.gathering
    if (gathering === undefined) return
    this.gathering = undefined
    clearTimeout(gathering.timer)
    gathering.resolve()
  }

  private async writeBatch(): Promise<void> {
    try {
      const handle = await this.fileWithRoomFor(this.queueBytes[0]!)
      const batch = this.takeBatch()
      await handle.appendFile(batch)
      this.size += batch.length
    } catch (error) {
      this.warn(error)
      this.queue = []
      this.queueBytes = []
      this.queuedBytes = 0
      await this.handle?.close().catch(() => {})
      this.handle = undefined
    }
  }

  /** The open `app.log`, rotated first if `bytes` more would pass fileBytes (unless it is empty). */
  private async fileWithRoomFor(bytes: number): Promise<FileHandle> {
    this.handle ??= await this.open()
    if (this.size === 0 || this.size + bytes <= this.limits.fileBytes) return this.handle
    await this.handle.close()
    this.handle = undefined
    await rm(this.path(this.limits.files - 1), {force: true})
    for (let index = this.limits.files - 2; index >= 0; index--) await rename(this.path(index), this.path(index + 1)).catch(ignoreMissing)
    this.handle = await this.open()
    return this.handle
  }

  /** The queued lines that fit in the current file; at least one (a longer line gets a file of its own). */
  private takeBatch(): Buffer {
    let count = 0
    let bytes = 0
    while (count < this.queue.length && (count === 0 || this.size + bytes + this.queueBytes[count]! <= this.limits.fileBytes)) bytes += this.queueBytes[count++]!
    this.queuedBytes -= bytes
    this.queueBytes.splice(0, count)
    return Buffer.from(`${this.queue.splice(0, count).join('\n')}\n`)
  }

  private async open(): Promise<FileHandle> {
    const handle = await open(this.path(0), 'a+', 0o600)
    try {
      this.size = (await handle.stat()).size
      // A line cut short by a crash must not run into the next one.
      if (this.size > 0 && (await handle.read(Buffer.alloc(1), 0, 1, this.size - 1)).buffer[0] !== NEWLINE) {
        await handle.appendFile('\n')
        this.size++
      }
      return handle
    } catch (error) {
      await handle.close()
      throw error
    }
  }

  private path(index: number): string {
    return join(this.dir, index === 0 ? 'app.log' : `app.log.${index}`)
  }

  private warn(error: unknown): void {
    if (this.warned) return
    this.warned = true
    console.error(`dev-agent: cannot write the logs in ${this.dir} (${(error as Error).message}); recent lines are kept in memory`)
  }
}

/**
 * How long queued lines wait for more to join them in one write. A router under load logs a line
 * per request, and a write (a trip to libuv's thread pool and back, waking a thread each time)
 * every few lines cost it about a tenth of its requests per second. Nothing reads the files that
 * soon: `dev logs` and live tails are served from memory.
 */
const GATHER_MS = 50

const NEWLINE = 0x0a
const TAIL_CHUNK_BYTES = 64 * 1024

/** The last `count` lines of a file, read backwards in chunks so a big file costs only its tail. */
function tailOfFile(path: string, count: number): string[] {
  const fd = openSync(path, 'r')
  try {
    let start = fstatSync(fd).size
    const chunks: Buffer[] = []
    let newlines = 0
    // count + 1 newlines mark `count` whole lines after a first one that may be cut.
    while (start > 0 && newlines <= count) {
      const length = Math.min(TAIL_CHUNK_BYTES, start)
      start -= length
      const chunk = Buffer.alloc(length)
      readSync(fd, chunk, 0, length, start)
      chunks.unshift(chunk)
      for (let at = chunk.indexOf(NEWLINE); at !== -1; at = chunk.indexOf(NEWLINE, at + 1)) newlines++
    }
    let bytes = Buffer.concat(chunks)
    if (start > 0) bytes = bytes.subarray(bytes.indexOf(NEWLINE) + 1)
    return bytes
      .toString('utf8')
      .split('\n')
      .filter((line) => line !== '')
      .slice(-count)
  } finally {
    closeSync(fd)
  }
}

function ignoreMissing(error: NodeJS.ErrnoException): void {
  if (error.code !== 'ENOENT') throw error
}
