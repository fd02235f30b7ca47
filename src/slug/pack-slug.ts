import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {mkdir, rename, rm, stat} from 'node:fs/promises'
import {dirname, join, posix} from 'node:path'
import {pipeline} from 'node:stream/promises'

import {create as createTar} from 'tar'

import {DevError} from '../runtime/dev-error.js'

/** The fixed modification time of every entry, so the same files always give the same bytes. */
const EPOCH = new Date('2000-01-01T00:00:00Z')

export interface PackedSlug {
  sha256: string
  size: number
  path: string
}

/**
 * Packs the files under `dir` (`paths`, relative, in any order) into a reproducible gzipped tar at
 * `out`: entries sorted, their parent directories included, owner and group 0, modes 0755 for
 * directories and executables and 0644 for other files, one fixed mtime, and a gzip header without
 * a timestamp. The same files therefore always give the same bytes, hence the same sha256.
 */
export async function packSlug(dir: string, paths: readonly string[], out: string): Promise<PackedSlug> {
  const entries = withParentDirectories(paths)
  const outsideLinks: string[] = []
  await mkdir(dirname(out), {recursive: true})
  const partial = `${out}.partial-${process.pid}`
  try {
    createTar(
      {
        file: partial,
        cwd: dir,
        gzip: {level: 6},
        portable: true,
        mtime: EPOCH,
        noDirRecurse: true,
        strict: true,
        // Synchronous file access: with thousands of small files, the thread-pool round trips of
        // the asynchronous calls cost more than the reads themselves.
        sync: true,
        onWriteEntry(entry) {
          if (entry.type === 'SymbolicLink' && linksOutside(entry.path, entry.linkpath ?? '')) outsideLinks.push(`${entry.path} is a link to ${entry.linkpath}`)
          // Normalise before the header is written: executables 0755, other files 0644.
          const mode = entry.stat!.mode
          const type = mode & 0o170000
          const executable = type === 0o040000 || (mode & 0o111) !== 0
          entry.stat!.mode = type | (executable ? 0o755 : 0o644)
        },
      },
      entries,
    )
    if (outsideLinks.length > 0) {
      throw new DevError(`${outsideLinks[0]}, outside the app; a slug may only hold links to its own files (copy the file instead)`)
    }
    const sha256 = await hashFile(partial)
    const size = (await stat(partial)).size
    await rename(partial, out)
    return {sha256, size, path: out}
  } finally {
    await rm(partial, {force: true})
  }
}

/** A slug may hold symbolic links only to its own files: extraction refuses any other. */
function linksOutside(path: string, target: string): boolean {
  const resolved = posix.normalize(posix.join(posix.dirname(path), target))
  return posix.isAbsolute(target) || resolved === '..' || resolved.startsWith('../')
}

/** Sorted paths with every parent directory listed before what it holds (as `dir/`). */
function withParentDirectories(paths: readonly string[]): string[] {
  const all = new Set<string>()
  for (const path of paths) {
    const parts = path.split('/')
    for (let depth = 1; depth < parts.length; depth++) all.add(`${parts.slice(0, depth).join('/')}/`)
    all.add(path)
  }
  return [...all].sort()
}

export async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(path), hash)
  return hash.digest('hex')
}

/** Where a slug with this sha256 is kept under a directory of slugs. */
export function slugPath(slugsDir: string, sha256: string): string {
  return join(slugsDir, `${sha256}.tgz`)
}
