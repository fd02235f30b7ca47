import {readdir, stat} from 'node:fs/promises'
import {join, resolve} from 'node:path'

import {DevError} from '../runtime/dev-error.js'

/**
 * The slug file that `ref` names: a path to a .tgz, or a slug id (its sha256, or a prefix of at
 * least 7 characters that only one slug has) under `slugsDir`.
 */
export async function findSlug(ref: string, slugsDir: string, cwd: string): Promise<string> {
  const asPath = resolve(cwd, ref)
  if (await isFile(asPath)) return asPath
  if (!/^[0-9a-f]{7,64}$/.test(ref)) throw new DevError(`no slug file ${ref}; give a slug id from dev build, or the path of a .tgz`)
  const names = await readdir(slugsDir).catch(() => [] as string[])
  const matches = names.filter((name) => name.endsWith('.tgz') && name.startsWith(ref))
  if (matches.length === 0) throw new DevError(`no slug ${ref} in ${slugsDir}; build one with dev build`)
  if (matches.length > 1) throw new DevError(`slug id ${ref} is ambiguous (${matches.length} slugs start with it); give more of it`)
  return join(slugsDir, matches[0]!)
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (stats) => stats.isFile(),
    () => false,
  )
}
