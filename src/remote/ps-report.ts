import type {DynoInfo, FormationItem} from '../runtime/dyno-api.js'
import {shortTime, timeAgo} from '../runtime/time-ago.js'

/**
 * `dev ps` as text, like `heroku ps`: a heading per process type with its command and quantity,
 * then each dyno with its state, since when, its release and restarts; one-off runs last.
 */
export function formatPs(formation: readonly FormationItem[], dynos: readonly DynoInfo[], now = Date.now()): string {
  const lines: string[] = []
  const line = (dyno: DynoInfo) => {
    const facts = [dyno.release, dyno.restarts > 0 ? `${dyno.restarts} restart${dyno.restarts === 1 ? '' : 's'}` : undefined, dyno.pid === null ? undefined : `pid ${dyno.pid}`].filter(Boolean)
    const run = dyno.type === 'run' ? `: ${dyno.command}` : ''
    return `${dyno.name}: ${dyno.state} ${shortTime(dyno.since)} (${timeAgo(dyno.since, now)}) ${facts.join(', ')}${run}`
  }
  for (const {type, quantity, command} of formation) {
    const ofType = dynos.filter((dyno) => dyno.type === type)
    if (quantity === 0 && ofType.length === 0) continue
    if (lines.length > 0) lines.push('')
    lines.push(`=== ${type} (${quantity}): ${command}`)
    for (const dyno of ofType) lines.push(line(dyno))
  }
  const runs = dynos.filter((dyno) => dyno.type === 'run' || !formation.some((entry) => entry.type === dyno.type))
  if (runs.length > 0) {
    if (lines.length > 0) lines.push('')
    lines.push(`=== run: one-off processes (${runs.length})`)
    for (const dyno of runs) lines.push(line(dyno))
  }
  if (lines.length === 0) lines.push(formation.length === 0 ? 'no dynos: nothing deployed yet' : `no dynos: every type is scaled to 0 (${formation.map((entry) => entry.type).join(', ')})`)
  return `${lines.join('\n')}\n`
}
