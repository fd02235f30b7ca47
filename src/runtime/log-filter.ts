/** Which lines a reader wants. `ps` is a process type (`web`: every `web.N`) or one dyno or process (`web.1`). */
export interface LogFilter<Source extends string = string> {
  ps?: string
  source?: Source
}

/** Whether a line from `source` about `ps` passes `filter`: the agent's log and dev start's read alike. */
export function matchesLogFilter(entry: {source: string; ps?: string}, filter: LogFilter): boolean {
  if (filter.source !== undefined && entry.source !== filter.source) return false
  if (filter.ps === undefined || entry.ps === filter.ps) return true
  // `--ps router` as on Heroku: the router's lines name no dyno of their own.
  if (filter.ps === 'router') return entry.source === 'router'
  // A process type matches each of its dynos.
  return !filter.ps.includes('.') && entry.ps?.startsWith(`${filter.ps}.`) === true
}
