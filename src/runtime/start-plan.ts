import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type {Writable} from 'node:stream'

import {loadAppEnv} from './app-env.js'
import {resolveAppFiles, type AppFileOptions, type AppFiles} from './app-files.js'
import {UsageError} from './dev-error.js'
import {displayPath} from './display-path.js'
import {resolveFormation, type FormationEntry} from './formation.js'
import {MAX_PORT, portFor, resolveBasePort} from './ports.js'
import {processEnv} from './process-env.js'
import {readProcfile, type ProcessType} from './procfile.js'
import type {DynoSpec, RestartPolicy} from './supervisor.js'

export interface StartOptions extends AppFileOptions {
  /** `web=2,worker=0,all=1` */
  formation?: string
  /** Start only these types. */
  only?: readonly string[]
  port?: number
  /** Seconds between SIGTERM and SIGKILL when stopping. */
  timeout: number
  timestamp: boolean
  colour: boolean
  restart: RestartPolicy
  /** Restart when files change under these paths (relative to the working directory); [] = the app root. */
  watch?: readonly string[]
  /** Run this slug (an id from dev build, or a .tgz path) instead of the working tree. */
  slug?: string
  /** Put the HTTP router in front of the web processes, on this port. */
  router?: number
}

/** Where `dev start` reads signals from and writes to; tests pass their own. */
export interface StartIo {
  stdout: Writable
  signals: NodeJS.EventEmitter
  env: NodeJS.ProcessEnv
  cwd: string
}

/** Everything `dev start` needs to run, read and checked before any process starts. */
export interface StartPlan {
  files: AppFiles
  formation: FormationEntry[]
  specs: DynoSpec[]
  /** Every type of the Procfile, in file order (its place gives its ports). */
  types: ProcessType[]
  /** Instance `instance` of the Procfile type named `type` (a UsageError if its port would pass 65535). */
  specFor(type: string, instance: number): DynoSpec
  /** Removes what the plan made (an extracted slug). */
  dispose(): Promise<void>
}

/** Reads the app and works out every process to run, with its port and environment. */
export async function planStart(options: StartOptions, io: Pick<StartIo, 'env' | 'cwd'>): Promise<StartPlan> {
  const files = resolveAppFiles(options, io.cwd)
  if (options.slug !== undefined && options.watch !== undefined) throw new UsageError('--watch and --slug do not go together: a slug never changes')
  const env = await loadAppEnv(files, io.env)
  // From a slug, processes run in the extracted slug with its Procfile; env files stay the working tree's.
  const slug = options.slug === undefined ? undefined : await extractForStart(options.slug, files)
  try {
    const procfile = slug ? join(slug.dir, 'Procfile') : files.procfile
    const types = await readProcfile(procfile, slug ? `${options.slug}:Procfile` : displayPath(procfile, files.cwd))
    const base = resolveBasePort({flag: options.port, envFiles: env.vars.get('PORT'), shell: io.env.PORT})
    const formation = resolveFormation(types, {spec: options.formation, only: options.only})
    const cwd = slug?.dir ?? files.root
    const specFor = (typeName: string, instance: number): DynoSpec => {
      const index = types.findIndex((type) => type.name === typeName)
      const type = types[index]
      if (type === undefined) throw new UsageError(`unknown process type "${typeName}"`)
      const name = `${type.name}.${instance}`
      const port = portFor(base, index, instance)
      if (port > MAX_PORT) throw new UsageError(`${name} would get port ${port}, above ${MAX_PORT}; pass a lower --port`)
      const own = {PORT: String(port), PS: name, DYNO: name}
      return {name, type: type.name, command: type.command, cwd, env: processEnv(io.env, env.vars, own), port, profile: slug !== undefined}
    }
    const specs = formation.flatMap(({type, quantity}) => Array.from({length: quantity}, (_, at) => specFor(type.name, at + 1)))
    return {files, formation, specs, types, specFor, dispose: async () => slug?.dispose()}
  } catch (error) {
    await slug?.dispose()
    throw error
  }
}

/** Extracts a slug into a fresh temporary directory for `dev start --slug`. */
async function extractForStart(ref: string, files: AppFiles): Promise<{dir: string; dispose(): Promise<void>}> {
  // Loaded only for --slug: tar is not needed to run a working tree.
  const [{findSlug}, {extractSlug}] = await Promise.all([import('../slug/find-slug.js'), import('../slug/extract-slug.js')])
  const path = await findSlug(ref, join(files.root, '.dev', 'slugs'), files.cwd)
  const dir = await mkdtemp(join(tmpdir(), 'dev-slug-'))
  // A refused archive may still have writes in flight for a moment: retry until the tree is gone.
  const dispose = () => rm(dir, {recursive: true, force: true, maxRetries: 10, retryDelay: 20})
  try {
    await extractSlug(path, dir)
  } catch (error) {
    await dispose()
    throw error
  }
  return {dir, dispose}
}

