import {mkdir} from 'node:fs/promises'

import {extract} from 'tar'

import {DevError} from '../runtime/dev-error.js'

/**
 * Extracts a slug into `dir`, refusing anything that would land outside it: absolute paths, `..`
 * components, links that point outside, and writes through a link. node-tar does the checking;
 * `strict` turns each of its warnings into an error, so a hostile archive fails as a whole instead
 * of being extracted with the bad entries quietly left out.
 */
export async function extractSlug(slug: string, dir: string): Promise<void> {
  await mkdir(dir, {recursive: true})
  try {
    await extract({file: slug, cwd: dir, strict: true, preservePaths: false, preserveOwner: false, noChmod: false})
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw new DevError(`refused to extract ${slug}: ${reason}; the slug is damaged or hostile, so rebuild it with dev build`, {cause: error})
  }
}
