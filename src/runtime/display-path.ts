import {isAbsolute, relative} from 'node:path'

/** A path as the user should see it: relative to `cwd` when it lies inside it, else absolute. */
export function displayPath(path: string, cwd = process.cwd()): string {
  const rel = relative(cwd, path)
  if (rel === '') return '.'
  if (rel.startsWith('..') || isAbsolute(rel)) return path
  return rel
}
