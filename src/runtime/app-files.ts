import {dirname, resolve} from 'node:path'

import {UsageError} from './dev-error.js'

/** Where `dev` finds an app's files, from the -f/--procfile, -d/--root and -e/--env flags. */
export interface AppFileOptions {
  procfile?: string
  root?: string
  /** Env files as given: each entry may hold several comma-separated paths. */
  env?: readonly string[]
}

export interface AppFiles {
  /** The app root: processes run here. */
  root: string
  procfile: string
  envFiles: string[]
  /** True when the env files were named with -e (a missing one is then an error). */
  explicitEnv: boolean
  /** The directory the flags were relative to; paths are shown to the user relative to it. */
  cwd: string
}

/**
 * Resolves the app's paths. Paths given on the command line are relative to `cwd`. The root is
 * -d, else the Procfile's directory, else `cwd`; the Procfile is -f, else ROOT/Procfile; the env
 * files are -e (later ones win), else ROOT/.env when it exists.
 */
export function resolveAppFiles(options: AppFileOptions, cwd = process.cwd()): AppFiles {
  const procfileFlag = options.procfile === undefined ? undefined : resolve(cwd, options.procfile)
  const root = options.root === undefined ? (procfileFlag ? dirname(procfileFlag) : cwd) : resolve(cwd, options.root)
  const named = (options.env ?? []).flatMap((entry) => entry.split(',')).map((path) => path.trim()).filter(Boolean)
  if (options.env !== undefined && options.env.length > 0 && named.length === 0) throw new UsageError('-e/--env needs a file path')
  return {
    root,
    procfile: procfileFlag ?? resolve(root, 'Procfile'),
    envFiles: named.length > 0 ? named.map((path) => resolve(cwd, path)) : [resolve(root, '.env')],
    explicitEnv: named.length > 0,
    cwd,
  }
}
