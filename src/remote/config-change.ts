import type {AppApi} from './app-api.js'

/**
 * Sets (a string) or unsets (null) config vars as one release and says what happened:
 * `Set GREETING, LOG_LEVEL and restarted shop: v7`. Only names are ever shown.
 */
export async function describeConfigChange(api: AppApi, changes: Record<string, string | null>, restart: boolean): Promise<string> {
  const before = await api.configVars()
  const set = Object.keys(changes).filter((key) => changes[key] !== null)
  const unset = Object.keys(changes).filter((key) => changes[key] === null && key in before)
  const missing = Object.keys(changes).filter((key) => changes[key] === null && !(key in before))
  if (set.length === 0 && unset.length === 0) return `${api.app} has no config var ${missing.join(', ')}; nothing changed`
  await api.patchConfig(Object.fromEntries([...set.map((key) => [key, changes[key]]), ...unset.map((key) => [key, null])]), {restart})
  const release = (await api.releases()).at(-1)
  const what = [set.length > 0 ? `Set ${set.join(', ')}` : '', unset.length > 0 ? `Unset ${unset.join(', ')}` : ''].filter(Boolean).join('; ')
  const how = restart ? 'dynos replaced' : 'running dynos keep the old values until dev restart'
  return `${what} on ${api.app}: release v${release?.v} (${how})`
}
