import {constants} from 'node:os'
import type {Writable} from 'node:stream'

import {openControlServer, type ControlServer} from './control-server.js'
import type {FileWatcher} from './file-watcher.js'
import {LocalDynos} from './local-dynos.js'
import {DEV_PS, LocalLog} from './local-log.js'
import {LogPrinter, SYSTEM_NAME} from './log-printer.js'
import {takenPortWarnings} from './port-warnings.js'
import {LOCAL_BACKOFF} from './restart-backoff.js'
import {planStart, type StartIo, type StartOptions} from './start-plan.js'
import {Supervisor, type DynoSpec} from './supervisor.js'
import {DevError} from './dev-error.js'
import {LocalRoutes} from './local-router.js'
import type {Router} from '../router/router.js'
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
  const startedAt = new Date()
  const plan = await planStart(options, io)
  const names = plan.specs.map((spec) => spec.name)
  let supervisor: Supervisor | undefined
  // What the control socket's log gets: every line printed, in the host agent's terms.
  const log = new LocalLog()
  // Types in the order they got their colours: one scaled up later gets the next colour, the others keep theirs.
  let printedTypes = typesOf(plan.specs)
  const printer = new LogPrinter(
    io.stdout,
    {
      names: options.router === undefined ? names : [...names, ROUTER_NAME],
      types: printedTypes,
      colour: options.colour,
      timestamp: options.timestamp,
      copy: {
        output: (name, block) => log.appendBlock('app', name, block),
        message: (name, text) => {
          if (name === ROUTER_NAME) log.append('router', undefined, text)
          else log.append('dev', name === SYSTEM_NAME ? DEV_PS : name, text)
        },
      },
    },
    {pause: () => supervisor?.pauseOutput(), resume: () => supervisor?.resumeOutput()},
  )

  const watching = options.watch !== undefined
  let status: number | undefined
  let stopped!: (shutdown: Promise<void>) => void
  const stopping = new Promise<Promise<void>>((resolve) => (stopped = resolve))
  const stopAll = (why: number) => {
    if (status !== undefined) return
    status = why
    dynos.close()
    routes.stop()
    stopped(supervisor!.shutdown())
  }

  // The web processes' states, for the router and for `dev ps`.
  const routes = new LocalRoutes(plan.specs, {root: plan.files.root, log: (line) => printer.message(ROUTER_NAME, line), onUp: (name) => dynos.onWebUp(name)})
  let router: Router | undefined
  supervisor = new Supervisor(
    {stopTimeoutMs: options.timeout * 1000, restart: options.restart, backoff: LOCAL_BACKOFF},
    {
      onOutput: (dyno, block) => printer.output(dyno, block),
      onEvent: (event) => {
        printer.event(event)
        routes.onEvent(event)
        dynos.onEvent(event)
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

  // What `dev ps`, `dev scale`, `dev restart` and `dev stop` see and change.
  const dynos = new LocalDynos({
    supervisor,
    routes,
    source: plan,
    specs: plan.specs,
    say: (text) => printer.message(SYSTEM_NAME, text),
    onFormation: (specs) => {
      printedTypes = [...new Set([...printedTypes, ...typesOf(specs)])]
      printer.setFormation(
        specs.map((spec) => spec.name),
        printedTypes,
      )
    },
  })

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
  let control: ControlServer | undefined
  try {
    // Before any process starts: a dev start already running here refuses this one.
    const loadRoutes = async () => (await import('./control-routes.js')).controlRoutes({root: plan.files.root, startedAt, dynos, log})
    control = await openControlServer(plan.files.root, loadRoutes, (text) => printer.message(SYSTEM_NAME, text))
    for (const warning of await takenPortWarnings(plan.specs)) printer.message(SYSTEM_NAME, warning)
    if (options.router !== undefined) {
      // Else the process would fail to listen on its PORT (EADDRINUSE), after the router had started.
      const clash = plan.specs.find((spec) => spec.port === options.router)
      if (clash !== undefined) throw new DevError(`the router's port ${options.router} is also ${clash.name}'s PORT; pick another with --router=PORT, or another base port with --port`)
      // Loaded only for --router, which most runs do without.
      const {Router} = await import('../router/router.js')
      router = new Router(() => routes.routed)
      await router.listen(options.router).catch((error: NodeJS.ErrnoException) => {
        throw new DevError(`the router cannot listen on port ${options.router} (${error.code ?? error.message}); pick another with --router=PORT`)
      })
      printer.message(SYSTEM_NAME, `router listening on http://localhost:${options.router}`)
    }
    // Watch before starting, so no change made after a process starts can be missed.
    if (watching) {
      const onFormation = (specs: DynoSpec[]) => {
        routes.setFormation(specs)
        printedTypes = typesOf(specs)
        // The Procfile is read again for `dev ps` and `dev scale` (watch's own reading is not shared).
        const source = planStart(options, io).then(async (next) => {
          await next.dispose()
          return next
        })
        dynos.replaceFormation(specs, source)
      }
      watcher = await watchForRestarts({options, io, plan, printer, supervisor, stopped: () => status !== undefined, onFormation})
    }
    supervisor.start(plan.specs)
    await (await stopping)
    await supervisor.settled()
  } finally {
    for (const [signal, handler] of handlers) io.signals.off(signal, handler)
    io.stdout.off('error', onOutputError)
    await watcher?.close()
    dynos.close()
    log.close()
    await control?.close()
    routes.close()
    await router?.close()
    await plan.dispose()
  }
  if (!printer.closed) await new Promise<void>((resolve) => io.stdout.write('', () => resolve()))
  return status ?? 0
}

/** The process types of `specs`, in their order, each once. */
function typesOf(specs: readonly DynoSpec[]): string[] {
  return [...new Set(specs.map((spec) => spec.type))]
}
