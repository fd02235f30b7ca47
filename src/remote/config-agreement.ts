import {DevError} from '../runtime/dev-error.js'

/**
 * The app's config vars when every host has the same ones (they are set on all hosts together);
 * otherwise an error naming the hosts and the variables that differ, never the values.
 */
export function agreedConfig(configs: readonly {name: string; value: Record<string, string>}[]): Record<string, string> {
  const [first, ...others] = configs
  if (first === undefined) return {}
  for (const other of others) {
    const keys = new Set([...Object.keys(first.value), ...Object.keys(other.value)])
    const differing = [...keys].filter((key) => first.value[key] !== other.value[key]).sort()
    if (differing.length > 0) throw new DevError(`the config vars of ${first.name} and ${other.name} differ (${differing.join(', ')}); name one host with --host, or set them again on all hosts`)
  }
  return first.value
}
