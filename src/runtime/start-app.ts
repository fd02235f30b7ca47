import {existsSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {constants, tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import type {Writable} from 'node:stream'

import {loadAppEnv} from './app-env.js'
import {resolveAppFiles, type AppFileOptions, type AppFiles} from './app-files.js'
import {isDevError, UsageError} from './dev-error.js'
import {displayPath} from './display-path.js'
import type {FileWatcher} from './file-watcher.js'
import {resolveFormation, type FormationEntry} from './formation.js'
import {LogPrinter, SYSTEM_NAME} from './log-printer.js'
import {MAX_PORT, portFor, portInUse, resolveBasePort} from './ports.js'
import {processEnv} from './process-env.js'
import {readProcfile} from './procfile.js'
import {extractSlug} from '../slug/extract-slug.js'
import {findSlug} from '../slug/find-slug.js'
import {LOCAL_BACKOFF} from './restart-backoff.js'
import {RestartLimiter} from './restart-limiter.js'
import {Supervisor, type DynoSpec, type RestartPolicy} from './supervisor.js'

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
}

/** Where `dev start` reads signals from and writes to; tests pass their own. */
export interface StartIo {
  stdout: Writable
  signals: NodeJS.EventEmitter
  env: NodeJS.ProcessEnv
  cwd: string
}

/** Ctrl-\ (SIGQUIT) stops the app like Ctrl-C: dev's processes are not in the terminal's group. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const

/** Everything `dev start` needs to run, read and checked before any process starts. */
export interface StartPlan {
  files: AppFiles
  formation: FormationEntry[]
  specs: DynoSpec[]
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
    const specs: DynoSpec[] = []
    for (const {type, index, quantity} of formation) {
      for (let instance = 1; instance <= quantity; instance++) {
        const name = `${type.name}.${instance}`
        const port = portFor(base, index, instance)
        if (port > MAX_PORT) throw new UsageError(`${name} would get port ${port}, above ${MAX_PORT}; pass a lower --port`)
        const own = {PORT: String(port), PS: name, DYNO: name}
        const cwd = slug?.dir ?? files.root
        specs.push({name, type: type.name, command: type.command, cwd, env: processEnv(io.env, env.vars, own), port, profile: slug !== undefined})
      }
    }
    return {files, formation, specs, dispose: async () => slug?.dispose()}
  } catch (error) {
    await slug?.dispose()
    throw error
  }
}

/** Extracts a slug into a fresh temporary directory for `dev start --slug`. */
async function extractForStart(ref: string, files: AppFiles): Promise<{dir: string; dispose(): Promise<void>}> {
  const path = await findSlug(ref, join(files.root, '.dev', 'slugs'), files.cwd)
  const dir = await mkdtemp(join(tmpdir(), 'dev-slug-'))
  const dispose = () => rm(dir, {recursive: true, force: true})
  try {
    await extractSlug(path, dir)
  } catch (error) {
    await dispose()
    throw error
  }
  return {dir, dispose}
}

/**
 * `dev start`: runs the formation until a process exits (or, with a restart policy, until every
 * process has completed; under --watch, until stopped) or dev gets SIGINT, SIGTERM, SIGHUP or
 * SIGQUIT, or its output goes away; then stops every process group. Resolves to dev's exit status:
 * the exit status of the process whose exit stopped the app (128 + signal when a signal killed it),
 * or 128 + the signal that stopped dev (141 for closed output).
 */
export async function startApp(options: StartOptions, io: StartIo): Promise<number> {
  const plan = await planStart(options, io)
  const names = plan.specs.map((spec) => spec.name)
  let supervisor: Supervisor | undefined
  const printer = new LogPrinter(
    io.stdout,
    {names, types: plan.formation.map((entry) => entry.type.name), colour: options.colour, timestamp: options.timestamp},
    {pause: () => supervisor?.pauseOutput(), resume: () => supervisor?.resumeOutput()},
  )

  for (const spec of plan.specs) {
    if (spec.port !== undefined && (await portInUse(spec.port))) {
      printer.message(SYSTEM_NAME, `warning: port ${spec.port} of ${spec.name} is already in use by another program; ${spec.name} may fail to bind it`)
    }
  }

  const watching = options.watch !== undefined
  let status: number | undefined
  let stopped!: (shutdown: Promise<void>) => void
  const stopping = new Promise<Promise<void>>((resolve) => (stopped = resolve))
  const stopAll = (why: number) => {
    if (status !== undefined) return
    status = why
    stopped(supervisor!.shutdown())
  }

  supervisor = new Supervisor(
    {stopTimeoutMs: options.timeout * 1000, restart: options.restart, backoff: LOCAL_BACKOFF},
    {
      onOutput: (dyno, block) => printer.output(dyno, block),
      onEvent: (event) => {
        printer.event(event)
        const crashed = (event.kind === 'exited' && !event.stopping) || event.kind === 'spawn-failed'
        if (crashed && options.restart === 'never') {
          // Under --watch a crash waits for the fix instead of ending the session.
          if (watching) printer.message(event.dyno, 'waiting for a file change to restart')
          else stopAll(event.kind === 'exited' ? event.status : 127)
        }
        // Under --watch, dev waits for the next change even when every process has completed.
        if (event.kind === 'completed' && !watching && supervisor!.idle()) stopAll(0)
      },
    },
  )

  let interrupts = 0
  const onSignal = (signal: (typeof STOP_SIGNALS)[number]) => {
    interrupts += 1
    // SIGHUP on a terminal means it has gone away: writing to it now only fails (and has crashed Node).
    if (signal === 'SIGHUP' && (io.stdout as Writable & {isTTY?: boolean}).isTTY) printer.close()
    if (interrupts === 1) {
      if (signal === 'SIGINT') printer.message(SYSTEM_NAME, 'stopping (press Ctrl-C again to kill at once)')
      stopAll(128 + constants.signals[signal])
    } else if (signal === 'SIGINT') {
      supervisor!.kill()
    }
  }
  const handlers = STOP_SIGNALS.map((signal) => [signal, () => onSignal(signal)] as const)
  for (const [signal, handler] of handlers) io.signals.on(signal, handler)
  // The reader of our output went away (`dev start | head`): nobody sees the app any more, so stop
  // it, as a program killed by SIGPIPE would end (status 141).
  const onOutputError = () => {
    printer.close()
    stopAll(128 + constants.signals.SIGPIPE)
  }
  io.stdout.on('error', onOutputError)

  let watcher: FileWatcher | undefined
  try {
    // Watch before starting, so no change made after a process starts can be missed.
    if (watching) watcher = await watchForRestarts({options, io, plan, printer, supervisor, stopped: () => status !== undefined})
    supervisor.start(plan.specs)
    await (await stopping)
    await supervisor.settled()
  } finally {
    for (const [signal, handler] of handlers) io.signals.off(signal, handler)
    io.stdout.off('error', onOutputError)
    await watcher?.close()
    await plan.dispose()
  }
  if (!printer.closed) await new Promise<void>((resolve) => io.stdout.write('', () => resolve()))
  return status ?? 0
}

/** How long watching stays paused after the loop breaker trips: until this long without changes. */
const QUIET_MS = 60_000

/**
 * `--watch`: restarts every process (gracefully) when a file changes; a change to the Procfile or
 * an env file re-reads them and starts the new formation. More than 10 restarts in a minute
 * pauses watching until a minute passes without changes, so a process that writes into a watched
 * directory cannot cause a restart loop.
 */
async function watchForRestarts(context: {
  options: StartOptions
  io: StartIo
  plan: StartPlan
  printer: LogPrinter
  supervisor: Supervisor
  stopped: () => boolean
}): Promise<FileWatcher> {
  const {options, io, plan, printer, supervisor} = context
  const config = [plan.files.procfile, ...plan.files.envFiles]
  const paths = options.watch!.length > 0 ? options.watch!.map((path) => resolve(io.cwd, path)) : [plan.files.root]
  const limiter = new RestartLimiter()
  let quiet: NodeJS.Timeout | undefined
  let queue = Promise.resolve()
  const say = (text: string) => printer.message(SYSTEM_NAME, text)
  for (const path of paths) if (!existsSync(path)) say(`warning: ${displayPath(path, io.cwd)} does not exist; nothing there is watched until it does`)

  const restart = async (changed: string[]) => {
    if (context.stopped()) return
    const shown = changed.slice(0, 3).map((path) => displayPath(path, io.cwd)).join(', ') + (changed.length > 3 ? ', …' : '')
    if (!changed.some((path) => config.includes(path))) {
      say(`${shown} changed; restarting all processes`)
      await supervisor.restart()
      return
    }
    let next: StartPlan
    try {
      next = await planStart(options, io)
    } catch (error) {
      if (!isDevError(error)) throw error
      say(`${shown} changed but cannot be used; keeping the running processes:`)
      for (const line of error.message.split('\n')) say(line)
      return
    }
    say(`${shown} changed; reloading and restarting all processes`)
    printer.setFormation(
      next.specs.map((spec) => spec.name),
      next.formation.map((entry) => entry.type.name),
    )
    await supervisor.replace(next.specs)
  }

  // chokidar is loaded only for --watch: it costs start-up time and memory.
  const {watchFiles} = await import('./file-watcher.js')
  const watcher = await watchFiles({
    paths,
    root: plan.files.root,
    always: config,
    onError: (error) => say(`warning: watching files failed: ${error.message}`),
    onChange: (changed) => {
      if (context.stopped()) return
      if (quiet) {
        quiet.refresh()
        return
      }
      if (!limiter.tryRecord()) {
        say('warning: more than 10 restarts in a minute; watching paused until files stay unchanged for a minute (is a process writing into a watched directory?)')
        quiet = setTimeout(() => {
          quiet = undefined
          say('watching files again')
        }, QUIET_MS).unref()
        return
      }
      queue = queue.then(() => restart(changed)).catch((error: Error) => say(`error: restart failed: ${error.message}`))
    },
  })
  return {
    // A restart already under way finishes before dev stops.
    async close() {
      await watcher.close()
      await queue
    },
  }
}
