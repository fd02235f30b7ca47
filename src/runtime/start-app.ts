import {constants} from 'node:os'
import type {Writable} from 'node:stream'

import type {FileWatcher} from './file-watcher.js'
import {LogPrinter, SYSTEM_NAME} from './log-printer.js'
import {portInUse} from './ports.js'
import {LOCAL_BACKOFF} from './restart-backoff.js'
import {planStart, type StartIo, type StartOptions} from './start-plan.js'
import {Supervisor} from './supervisor.js'
import {DevError} from './dev-error.js'
import {LocalRoutes} from './local-router.js'
import {Router} from '../router/router.js'
import {watchForRestarts} from './watch-restarts.js'

export type {StartIo, StartOptions} from './start-plan.js'

/** The router's lines in the output: `router | at=info method=GET …`. */
const ROUTER_NAME = 'router'

/** Ctrl-\ (SIGQUIT) stops the app like Ctrl-C: dev's processes are not in the terminal's group. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const

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
    {names: options.router === undefined ? names : [...names, ROUTER_NAME], types: plan.formation.map((entry) => entry.type.name), colour: options.colour, timestamp: options.timestamp},
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

  let routes: LocalRoutes | undefined
  let router: Router | undefined
  supervisor = new Supervisor(
    {stopTimeoutMs: options.timeout * 1000, restart: options.restart, backoff: LOCAL_BACKOFF},
    {
      onOutput: (dyno, block) => printer.output(dyno, block),
      onEvent: (event) => {
        printer.event(event)
        routes?.onEvent(event)
        const crashed = (event.kind === 'exited' && !event.stopping) || event.kind === 'spawn-failed'
        if (crashed && options.restart === 'never') {
          // Under --watch a crash waits for the fix instead of ending the session.
          if (watching) printer.message(event.dyno, 'waiting for a file change to restart')
          else stopAll(event.kind === 'exited' ? (event.status ?? 1) : 127)
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
    if (options.router !== undefined) {
      const local = new LocalRoutes(plan.specs, {root: plan.files.root, log: (line) => printer.message(ROUTER_NAME, line)})
      routes = local
      router = new Router(() => local.routed)
      await router.listen(options.router).catch((error: NodeJS.ErrnoException) => {
        throw new DevError(`the router cannot listen on port ${options.router} (${error.code ?? error.message}); pick another with --router=PORT`)
      })
      printer.message(SYSTEM_NAME, `router listening on http://localhost:${options.router}`)
    }
    // Watch before starting, so no change made after a process starts can be missed.
    if (watching) watcher = await watchForRestarts({options, io, plan, printer, supervisor, stopped: () => status !== undefined, onFormation: (specs) => routes?.setFormation(specs)})
    supervisor.start(plan.specs)
    await (await stopping)
    await supervisor.settled()
  } finally {
    for (const [signal, handler] of handlers) io.signals.off(signal, handler)
    io.stdout.off('error', onOutputError)
    await watcher?.close()
    routes?.close()
    await router?.close()
    await plan.dispose()
  }
  if (!printer.closed) await new Promise<void>((resolve) => io.stdout.write('', () => resolve()))
  return status ?? 0
}

