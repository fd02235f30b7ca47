import type {Writable} from 'node:stream'

import {Chalk, type ChalkInstance} from 'chalk'

import type {DynoEvent} from './supervisor.js'

/** The name of dev's own lines, and the narrowest the name column gets. */
export const SYSTEM_NAME = 'system'

/** Prefix colours, one per process type in formation order (then round again). */
const TYPE_COLOURS = ['cyan', 'yellow', 'green', 'magenta', 'blue', 'red', 'cyanBright', 'yellowBright', 'greenBright', 'magentaBright'] as const

export interface LogPrinterOptions {
  /** Every name that may be printed (`web.1` …), so the column is wide enough from the start. */
  names: readonly string[]
  /** Process types in formation order: each gets its own colour. */
  types: readonly string[]
  colour: boolean
  timestamp: boolean
  /** Also told every line printed, uncoloured and unprefixed (the control socket's log). */
  copy?: PrintedLines
}

/** What a LogPrinter prints, as it prints it: process output, and dev's own messages. */
export interface PrintedLines {
  /** A block of whole lines of a process's output, each ending in "\n". */
  output(name: string, block: Buffer): void
  /** One of dev's messages under `name` (a process, `system`, or the router). */
  message(name: string, text: string): void
}

/**
 * Renders supervisor output for a terminal or a file: `HH:MM:SS web.1  | line`, the prefix coloured
 * per type, the line's bytes untouched. Each batch of lines is one write; when `out` is slow,
 * `onBackpressure` is told to pause the processes until it drains.
 */
export class LogPrinter {
  private width = 0
  private readonly chalk: ChalkInstance
  private readonly colourOf = new Map<string, (text: string) => string>()
  private clockSecond = -1
  private clock = ''
  private readonly prefixes = new Map<string, string>()
  private blocked = false
  /** Set by close(): the output went away, and nothing more is written. */
  closed = false

  constructor(
    private readonly out: Writable,
    private readonly options: LogPrinterOptions,
    private readonly onBackpressure: {pause(): void; resume(): void} = {pause() {}, resume() {}},
  ) {
    this.chalk = new Chalk({level: options.colour ? 1 : 0})
    this.setFormation(options.names, options.types)
  }

  /** Sizes the name column and assigns colours for a (new) formation; the column never narrows. */
  setFormation(names: readonly string[], types: readonly string[]): void {
    this.width = Math.max(this.width, SYSTEM_NAME.length, ...names.map((name) => name.length))
    for (const [index, type] of types.entries()) this.colourOf.set(type, this.chalk[TYPE_COLOURS[index % TYPE_COLOURS.length]!])
    this.prefixes.clear()
  }

  /** Writes a block of whole lines of a process's output (each ending in "\n"), each with its prefix. */
  output(name: string, block: Buffer): void {
    this.options.copy?.output(name, block)
    // Latin-1 maps each byte to one character and back, so the bytes come out exactly as they came
    // in, whatever their encoding; the prefix is ASCII. One native replace prefixes the whole block.
    const prefix = this.prefix(name)
    const text = block.toString('latin1', 0, block.length - 1)
    this.write(Buffer.from(`${prefix}${text.replaceAll('\n', `\n${prefix}`)}\n`, 'latin1'))
  }

  /** Writes one of dev's own messages under `name` (a process, or `system`). */
  message(name: string, text: string): void {
    this.options.copy?.message(name, text)
    this.write(Buffer.from(`${this.prefix(name)}${text}\n`))
  }

  /** Writes the line dev prints for a supervisor event, if any. */
  event(event: DynoEvent): void {
    const text = describeEvent(event)
    if (text !== undefined) this.message(event.kind === 'signalling' ? SYSTEM_NAME : event.dyno, text)
  }

  private prefix(name: string): string {
    const now = Date.now()
    const second = Math.floor(now / 1000)
    if (second !== this.clockSecond) {
      this.clockSecond = second
      this.clock = this.options.timestamp ? `${new Date(now).toTimeString().slice(0, 8)} ` : ''
      this.prefixes.clear()
    }
    let prefix = this.prefixes.get(name)
    if (prefix === undefined) {
      const type = name === SYSTEM_NAME ? SYSTEM_NAME : name.replace(/\.\d+$/, '')
      const colour = this.colourOf.get(type) ?? this.chalk.bold
      prefix = `${colour(`${this.clock}${name.padEnd(this.width)} |`)} `
      this.prefixes.set(name, prefix)
    }
    return prefix
  }

  /** Stops writing: the reader of the output is gone. Lets paused processes go on. */
  close(): void {
    this.closed = true
    if (this.blocked) {
      this.blocked = false
      this.onBackpressure.resume()
    }
  }

  private write(data: Buffer): void {
    if (this.closed) return
    if (this.out.write(data) || this.blocked) return
    this.blocked = true
    this.onBackpressure.pause()
    this.out.once('drain', () => {
      this.blocked = false
      this.onBackpressure.resume()
    })
  }
}

function describeEvent(event: DynoEvent): string | undefined {
  switch (event.kind) {
    case 'started':
      return `started with pid ${event.pid}${event.port === undefined ? '' : ` on port ${event.port}`}`
    case 'spawn-failed':
      return `could not start: ${event.message}`
    case 'exited':
      return event.signal ? `terminated by ${event.signal}` : `exited with code ${event.code}`
    case 'restarting':
      return event.delayMs === 0 ? `restarting (attempt ${event.attempt})` : `restarting in ${formatDelay(event.delayMs)} (attempt ${event.attempt})`
    case 'completed':
      return 'completed'
    case 'signalling': {
      const count = event.dynos.length
      const who = event.all ? 'all processes' : `${count} ${count === 1 ? 'process' : 'processes'}`
      const why = event.afterMs === undefined ? '' : ` that did not stop in ${formatDelay(event.afterMs)}`
      return `sending ${event.signal} to ${who}${why}`
    }
  }
}

function formatDelay(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${(ms / 1000).toFixed(1)}s`
}
