/** `~ 5m ago`: how long ago a moment was, roughly, as `heroku ps` says it. */
export function timeAgo(iso: string, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  if (seconds < 60) return `~ ${seconds}s ago`
  if (seconds < 3600) return `~ ${Math.round(seconds / 60)}m ago`
  if (seconds < 86_400 * 2) return `~ ${Math.round(seconds / 3600)}h ago`
  return `~ ${Math.round(seconds / 86_400)}d ago`
}

/** `2026-11-22 07:38:48 UTC`: a moment, to the second, in UTC. */
export function shortTime(iso: string): string {
  return `${new Date(iso).toISOString().slice(0, 19).replace('T', ' ')} UTC`
}
