import {UsageError} from '../runtime/dev-error.js'

/** A release named on the command line: `v4` or `4`. */
export function parseVersion(text: string): number {
  const match = /^v?([1-9]\d{0,8})$/.exec(text)
  if (!match) throw new UsageError(`"${text}" is not a release: name one as v4 or 4 (dev releases lists them)`)
  return Number(match[1])
}
