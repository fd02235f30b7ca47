import {existsSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {isAbsolute, join, relative, resolve} from 'node:path'

import {watch} from 'chokidar'
import ignore from 'ignore'

/** Never worth a restart: VCS data, dependencies, build output, logs, editor droppings. */
export const DEFAULT_IGNORES = ['.git/', 'node_modules/', '.dev/', 'dist/', 'build/', 'coverage/', '*.log', '*.swp', '*.swo', '*.swx', '*~', '.#*', '#*#', '4913', '.DS_Store']

export const DEBOUNCE_MS = 300

export interface WatchOptions {
  /** Files and directories to watch. */
  paths: readonly string[]
  /** The app root: ignore rules (and its .gitignore) apply to paths below it. */
  root: string
  /** Files that are always watched, even when an ignore rule matches (the Procfile, env files). */
  always: readonly string[]
  /** Called with the changed paths once no change has been seen for `debounceMs`. */
  onChange(paths: string[]): void
  onError?(error: Error): void
  debounceMs?: number
}

export interface FileWatcher {
  close(): Promise<void>
}

/**
 * Watches files with chokidar and reports changes in bursts: every change restarts a trailing
 * timer, and the paths changed meanwhile are reported together when it fires.
 */
export async function watchFiles(options: WatchOptions): Promise<FileWatcher> {
  const ignored = await ignoreRules(options.root, options.always)
  const pending = new Set<string>()
  let timer: NodeJS.Timeout | undefined
  const fire = () => {
    timer = undefined
    const paths = [...pending]
    pending.clear()
    options.onChange(paths)
  }

  // Watch the always-watched files that the paths do not cover. (A path that does not exist yet
  // would make chokidar miss new files in its directory, so those are left out.)
  const extra = options.always.filter((file) => !options.paths.some((path) => isInside(file, path)) && existsSync(file))
  const watcher = watch([...options.paths, ...extra], {ignoreInitial: true, ignored, atomic: true})
  watcher.on('all', (_event, path) => {
    pending.add(resolve(path))
    if (timer) clearTimeout(timer)
    timer = setTimeout(fire, options.debounceMs ?? DEBOUNCE_MS)
  })
  watcher.on('error', (error) => options.onError?.(error as Error))
  await new Promise<void>((ready) => watcher.once('ready', ready))

  return {
    async close() {
      if (timer) clearTimeout(timer)
      await watcher.close()
    },
  }
}

/** The default ignores plus the app root's .gitignore, as a chokidar `ignored` function. */
async function ignoreRules(root: string, always: readonly string[]): Promise<(path: string) => boolean> {
  const rules = ignore().add(DEFAULT_IGNORES)
  const gitignore = await readFile(join(root, '.gitignore'), 'utf8').catch(() => '')
  rules.add(gitignore)
  const kept = new Set(always.map((path) => resolve(path)))
  return (path: string) => {
    const absolute = resolve(path)
    if (kept.has(absolute)) return false
    if (!isInside(absolute, root) || absolute === resolve(root)) return false
    const rel = relative(root, absolute)
    // Without stats a path may be a directory: test it both ways, so "dist/" rules match "dist".
    return rules.ignores(rel) || rules.ignores(`${rel}/`)
  }
}

function isInside(path: string, dir: string): boolean {
  const rel = relative(dir, path)
  return !rel.startsWith('..') && !isAbsolute(rel)
}
