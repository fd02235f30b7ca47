import type {Writable} from 'node:stream'

/** What a tail session holds while its reader is slow; past either bound it drops lines (L11). */
const TAIL_QUEUE_LINES = 1000
const TAIL_QUEUE_BYTES = 1024 ** 2

/** Lines dropped while the reader was slow, from `time` on. */
interface Gap {
  dropped: number
  time: number
}

/**
 * One live reader of a log stream. While `out` takes what it is given, lines go straight through;
 * once `out.write()` says to wait, lines queue up to a bound, and past it they are dropped. When
 * `out` drains, the queue goes out, and where lines were dropped the line `dropNote` makes says how
 * many (Heroku's L11), at the time of the first one dropped so the stream's times never go back.
 */
export class LogTail {
  private readonly queue: (string | Gap)[] = []
  private queuedLines = 0
  private queuedBytes = 0
  private waiting: boolean
  private ended = false

  constructor(
    private readonly out: Writable,
    private readonly dropNote: (dropped: number, time: number) => string,
    private readonly onEnd: () => void,
  ) {
    this.waiting = out.writableNeedDrain
    out.on('drain', this.drain)
    out.once('close', this.end)
    out.once('error', this.end)
  }

  /** Sends one line (without its newline), written at `time`. */
  send(line: string, time: number): void {
    if (this.out.destroyed) return this.end()
    const text = `${line}\n`
    if (!this.waiting) return this.write(text)
    const bytes = Buffer.byteLength(text)
    if (this.queuedLines < TAIL_QUEUE_LINES && this.queuedBytes + bytes <= TAIL_QUEUE_BYTES) {
      this.queue.push(text)
      this.queuedLines++
      this.queuedBytes += bytes
      return
    }
    const last = this.queue.at(-1)
    if (typeof last === 'object') last.dropped++
    else this.queue.push({dropped: 1, time})
  }

  /** Stops sending; `out` is left as it is. */
  readonly end = (): void => {
    if (this.ended) return
    this.ended = true
    this.out.off('drain', this.drain)
    this.out.off('close', this.end)
    this.out.off('error', this.end)
    this.onEnd()
  }

  /** Hands `out` what is queued, whatever its pace (the queue is bounded), and ends it. */
  finish(): void {
    this.end()
    if (!this.out.destroyed && !this.out.writableEnded) this.out.end(this.queue.map((item) => this.textOf(item)).join(''))
  }

  private readonly drain = (): void => {
    this.waiting = false
    while (!this.waiting && this.queue.length > 0) {
      const item = this.queue.shift()!
      if (typeof item === 'string') {
        this.queuedLines--
        this.queuedBytes -= Buffer.byteLength(item)
      }
      this.write(this.textOf(item))
    }
  }

  private write(text: string): void {
    if (!this.out.write(text)) this.waiting = true
  }

  private textOf(item: string | Gap): string {
    return typeof item === 'string' ? item : `${this.dropNote(item.dropped, item.time)}\n`
  }
}
