import {shortTime, timeAgo} from '../runtime/time-ago.js'
import type {Release} from './app-api.js'

/** A release as `dev releases --json` shows it: config var names, never their values. */
export function releaseSummary({config, ...release}: Release): Omit<Release, 'config'> & {config_keys: string[]} {
  return {...release, config_keys: Object.keys(config).sort()}
}

/** `dev releases`: newest first, like `heroku releases`. */
export function formatReleases(app: string, releases: readonly Release[], now = Date.now()): string {
  if (releases.length === 0) return `${app} has no releases yet\n`
  const current = releases.at(-1)!
  const rows = [...releases].reverse().map((release) => [`v${release.v}`, release.description, release.user, `${shortTime(release.created_at)} (${timeAgo(release.created_at, now)})`])
  const widths = [0, 1, 2].map((column) => Math.max(...rows.map((row) => row[column]!.length)))
  const lines = rows.map((row) => row.map((cell, column) => (column < 3 ? cell.padEnd(widths[column]!) : cell)).join('  '))
  return `=== ${app} releases (current: v${current.v})\n${lines.join('\n')}\n`
}

/** `dev releases info vN`. */
export function formatReleaseInfo(release: Release): string {
  const keys = Object.keys(release.config).sort()
  const fields: [string, string][] = [
    ['By', release.user],
    ['Change', release.description],
    ['When', `${shortTime(release.created_at)} (${timeAgo(release.created_at)})`],
    ['Slug', release.slug ?? 'none (config only)'],
    ['Source', release.source_version ?? 'unknown'],
    ['Config vars', keys.length === 0 ? 'none' : keys.join(', ')],
  ]
  return `=== Release v${release.v}\n${fields.map(([name, value]) => `${`${name}:`.padEnd(13)}${value}`).join('\n')}\n`
}
