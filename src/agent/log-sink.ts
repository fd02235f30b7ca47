/** Who wrote a line of an app's log stream. */
export type LogSource = 'app' | 'agent' | 'router'

/** Where the dyno manager and the API write an app's log lines (the app's merged log stream). */
export interface LogSink {
  /** One line (or several, each its own entry) from `source`, about dyno or part `ps`. */
  append(source: LogSource, ps: string | undefined, text: string): void
  /** A block of whole lines, each ending in "\n". */
  appendBlock(source: LogSource, ps: string | undefined, block: Buffer): void
}
