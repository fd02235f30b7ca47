import {existsSync} from 'node:fs'
import {resolve} from 'node:path'

import {isDevError} from './dev-error.js'
import {displayPath} from './display-path.js'
import type {FileWatcher} from './file-watcher.js'
import {SYSTEM_NAME, type LogPrinter} from './log-printer.js'
import {RestartLimiter} from './restart-limiter.js'
import {planStart, type StartIo, type StartOptions, type StartPlan} from './start-plan.js'
import type {Supervisor} from './supervisor.js'

/** How long watching stays paused after the loop breaker trips: until this long without changes. */
const QUIET_MS = 60_000

/**
 * `--watch`: restarts every process (gracefully) when a file changes; a change to the Procfile or
 * an env file re-reads them and starts the new formation. More than 10 restarts in a minute
 * pauses watching until a minute passes without changes, so a process that writes into a watched
 * directory cannot cause a restart loop.
 */
export async function watchForRestarts(context: {
  options: StartOptions
  io: StartIo
  plan: StartPlan
  printer: LogPrinter
  supervisor: Supervisor
  stopped: () => boolean
  /** Told of the new processes before they replace the old ones (the local router follows them). */
  onFormation?: (specs: StartPlan['specs']) => void
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
    context.onFormation?.(next.specs)
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
