import {UsageError} from './dev-error.js'
import {MAX_QUANTITY} from './formation.js'

/** One part of `dev scale`: `web=3` sets, `web+2` adds, `web-1` removes. */
export interface ScaleChange {
  type: string
  op: '=' | '+' | '-'
  count: number
}

const CHANGE = /^([A-Za-z0-9_-]+)([=+-])(\d+)$/

/** Reads `web=3 worker=0`, `web+2`, `web-1` (also comma-separated: `web=3,worker=1`). */
export function parseScaleChanges(args: readonly string[]): ScaleChange[] {
  const parts = args.flatMap((arg) => arg.split(',')).filter(Boolean)
  if (parts.length === 0) throw new UsageError('say what to scale: TYPE=N, TYPE+N or TYPE-N (e.g. dev scale web=3 worker=1)')
  const seen = new Set<string>()
  return parts.map((part) => {
    const match = CHANGE.exec(part)
    // Quoted as JSON: what was typed may hold a newline or a terminal escape, and be long.
    if (!match) throw new UsageError(`cannot read ${JSON.stringify(part.length > 60 ? `${part.slice(0, 60)}…` : part)}: use TYPE=N, TYPE+N or TYPE-N (e.g. web=3, web+2, worker-1)`)
    const [, type, op, count] = match
    if (seen.has(type!)) throw new UsageError(`${type} is named twice; name each process type once`)
    seen.add(type!)
    if (Number(count) > MAX_QUANTITY) throw new UsageError(`${part}: at most ${MAX_QUANTITY} dynos of a type`)
    return {type: type!, op: op as ScaleChange['op'], count: Number(count)}
  })
}

/** The quantities the changes ask for, given the current ones (types the app does not have are refused). */
export function applyScaleChanges(current: ReadonlyMap<string, number>, changes: readonly ScaleChange[]): Record<string, number> {
  const wanted: [string, number][] = []
  for (const {type, op, count} of changes) {
    const now = current.get(type)
    if (now === undefined) throw new UsageError(`the app has no process type ${type}; it has ${[...current.keys()].join(', ') || 'none (deploy it first)'}`)
    const next = op === '=' ? count : op === '+' ? now + count : now - count
    if (next < 0) throw new UsageError(`${type} has ${now} dyno${now === 1 ? '' : 's'}; it cannot lose ${count}`)
    if (next > MAX_QUANTITY) throw new UsageError(`${type} would have ${next} dynos; at most ${MAX_QUANTITY}`)
    wanted.push([type, next])
  }
  // Made by fromEntries: a type named __proto__ (a valid name) is a key like any other, not lost.
  return Object.fromEntries(wanted)
}

/** `web at 3, worker at 0`: a formation the way `dev scale` reports it. */
export function describeFormation(entries: readonly {type: string; quantity: number}[]): string {
  return entries.length === 0 ? 'no process types' : entries.map(({type, quantity}) => `${type} at ${quantity}`).join(', ')
}
