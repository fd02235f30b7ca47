import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {packSlug} from './pack-slug.js'
import {sourceSet} from './source-set.js'

export interface PackSourceOptions {
  root: string
  /** Env files named with -e; ROOT/.env is always left out too. */
  secrets: readonly string[]
  /**
   * Leave out what .slugignore lists (default true). A build applies .slugignore before compile,
   * and .slugignore itself travels with the source, so a host building the archive makes the same
   * slug either way: leaving the files out just makes the upload smaller.
   */
  slugignore?: boolean
}

export interface PackedSource {
  /** The archive, alone in a temporary directory that dispose() removes. */
  path: string
  sha256: string
  size: number
  /** How many files (and empty directories) it holds. */
  files: number
  dispose(): Promise<void>
}

/**
 * Packs the app's source set, as `dev build` collects it, into a reproducible gzipped tar: the
 * same tree always gives the same sha256, so a host that already has the archive needs no upload.
 */
export async function packSource({root, secrets, slugignore = true}: PackSourceOptions): Promise<PackedSource> {
  const files = await sourceSet({root, secrets: [join(root, '.env'), ...secrets], slugignore})
  const dir = await mkdtemp(join(tmpdir(), 'dev-source-'))
  const dispose = () => rm(dir, {recursive: true, force: true})
  try {
    const packed = await packSlug(root, files, join(dir, 'source.tgz'))
    return {...packed, files: files.length, dispose}
  } catch (error) {
    await dispose()
    throw error
  }
}
