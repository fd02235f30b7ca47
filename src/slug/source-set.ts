import {lstat, readdir, readFile} from 'node:fs/promises'
import {join, relative, sep} from 'node:path'

import {execa} from 'execa'
import ignore from 'ignore'
import pMap from 'p-map'

/** How many files are looked at or copied at once: enough to keep the disk and thread pool busy. */
export const FILE_CONCURRENCY = 64

/** Never part of a slug, whatever git or .slugignore say. */
const ALWAYS_LEFT_OUT = ['.git/', '.dev/']

export interface SourceSetOptions {
  root: string
  /** Files left out because they hold secrets: the env files `dev start` would load. */
  secrets: readonly string[]
  /** Apply ROOT/.slugignore (true for the app's source; not for a build's output). */
  slugignore?: boolean
}

/**
 * The files of the app that go into a build, as sorted paths relative to the root. In a git work
 * tree: the tracked files plus the untracked ones git does not ignore; elsewhere: every file under
 * the root. Always left out: `.git`, `.dev/`, the env files, and what `.slugignore` lists
 * (gitignore syntax). Symbolic links are kept as links; other special files are skipped.
 */
export async function sourceSet({root, secrets, slugignore = true}: SourceSetOptions): Promise<string[]> {
  const rules = ignore().add(ALWAYS_LEFT_OUT)
  if (slugignore) rules.add(await readFile(join(root, '.slugignore'), 'utf8').catch(() => ''))
  const secretPaths = new Set(secrets.map((path) => relative(root, path).split(sep).join('/')))
  const keep = (path: string) => !secretPaths.has(path) && !rules.ignores(path)
  const listed = await gitFiles(root)
  // A walk already knows each entry's type; it keeps only files and links.
  if (listed === undefined) return (await walk(root)).filter(keep).sort()
  const candidates = listed.filter(keep)
  // git lists deleted files that are still in the index; sockets and fifos cannot be packed.
  const packable = await pMap(
    candidates,
    async (path) => {
      const stats = await lstat(join(root, path)).catch(() => undefined)
      return stats !== undefined && (stats.isFile() || stats.isSymbolicLink())
    },
    {concurrency: FILE_CONCURRENCY},
  )
  return candidates.filter((_, index) => packable[index]).sort()
}

/** Tracked and untracked-but-not-ignored files below `root`, or undefined outside a work tree. */
async function gitFiles(root: string): Promise<string[] | undefined> {
  const result = await execa('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: root,
    reject: false,
    stdin: 'ignore',
    env: {GIT_OPTIONAL_LOCKS: '0'},
  })
  if (result.exitCode !== 0) return undefined
  return [...new Set(result.stdout.split('\0').filter(Boolean))]
}

/** Every file and symbolic link below `root` (and `dir/` for an empty directory), without .git or .dev. */
async function walk(root: string, dir = ''): Promise<string[]> {
  const files: string[] = []
  const entries = await readdir(join(root, dir), {withFileTypes: true})
  if (entries.length === 0 && dir !== '') return [`${dir}/`]
  for (const entry of entries) {
    const path = dir === '' ? entry.name : `${dir}/${entry.name}`
    if (entry.isDirectory()) {
      if (dir !== '' || (entry.name !== '.git' && entry.name !== '.dev')) files.push(...(await walk(root, path)))
    } else if (entry.isFile() || entry.isSymbolicLink()) {
      files.push(path)
    }
  }
  return files
}
