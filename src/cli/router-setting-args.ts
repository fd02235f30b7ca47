import type {RoutingChange} from '../remote/app-api.js'
import {UsageError} from '../runtime/dev-error.js'

/** The settings `dev router set` takes: each one's field in the agent API, and whether it takes whole seconds only. */
const SETTINGS = {
  'request-timeout': {field: 'request_timeout_seconds', wholeSeconds: false},
  'idle-timeout': {field: 'idle_timeout_seconds', wholeSeconds: true},
} as const

type Setting = keyof typeof SETTINGS

/** The longest either timeout may be, as the agent takes it. */
const MAX_SECONDS = 3600

/** `30`, `30s`, `1.5s`, `500ms`, `2m`, `1h`: a number with an optional unit (seconds without one). */
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/

const UNIT_MS = {ms: 1, s: 1000, m: 60_000, h: 3_600_000} as const

/**
 * The change `dev router set` was given: `request-timeout=60s`, `idle-timeout=2m`, or `=default`
 * to go back to the router's default. Checked here, so a mistake is named in the user's own words.
 */
export function routerSettingChanges(args: readonly string[]): RoutingChange {
  if (args.length === 0) throw new UsageError(`say what to set: dev router set ${Object.keys(SETTINGS).map((key) => `${key}=DURATION`).join(' ')} (or =default)`)
  const change: RoutingChange = {}
  const seen = new Set<string>()
  for (const arg of args) {
    const eq = arg.indexOf('=')
    const key = eq === -1 ? arg : arg.slice(0, eq)
    if (!Object.hasOwn(SETTINGS, key)) throw new UsageError(`"${key}" is not a router setting; give ${Object.keys(SETTINGS).join(' or ')}`)
    if (eq === -1) throw new UsageError(`${key} needs a value: ${key}=60s (or ${key}=default)`)
    if (seen.has(key)) throw new UsageError(`${key} is given twice`)
    seen.add(key)
    const {field, wholeSeconds} = SETTINGS[key as Setting]
    change[field] = seconds(key, arg.slice(eq + 1), wholeSeconds)
  }
  return change
}

/** A duration in seconds (whole milliseconds), or null for `default`. */
function seconds(key: string, given: string, wholeSeconds: boolean): number | null {
  const value = given.trim().toLowerCase()
  if (value === 'default') return null
  const match = DURATION.exec(value)
  if (match === null) throw new UsageError(`${key}=${given} is not a duration; give one like 30s, 500ms or 2m (or default)`)
  const exact = Number(match[1]) * UNIT_MS[(match[2] ?? 's') as keyof typeof UNIT_MS]
  const least = wholeSeconds ? '1s' : '1ms'
  if (exact < (wholeSeconds ? 1000 : 1) || exact > MAX_SECONDS * 1000) throw new UsageError(`${key}=${given} is out of range; give at least ${least} and at most 1h`)
  // Counted in whole milliseconds, so 2300ms is 2.3 s exactly, not 2.3000000000000003.
  const ms = Math.round(exact)
  if (wholeSeconds && ms % 1000 !== 0) throw new UsageError(`${key}=${given} is not whole seconds; the idle timeout is checked once a second`)
  return ms / 1000
}
