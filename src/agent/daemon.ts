import {mkdir, rm} from 'node:fs/promises'
import {join} from 'node:path'

import {agentPaths} from './agent-home.js'
import {destroyApp} from './app-destroy.js'
import {readAgentSettings} from './agent-settings.js'
import {startApiServer} from './api-server.js'
import {AppLog} from './app-log.js'
import {buildRoutes} from './build-routes.js'
import {AppStore} from './app-store.js'
import {DynoManager} from './dyno-manager.js'
import {HostBuilds} from './host-build.js'
import {logRoutes} from './log-routes.js'
import {SlugStore} from './slug-store.js'
import {routingRoutes} from './routing-routes.js'
import {agentInfoRoutes, type AgentInfo} from './agent-info-routes.js'
import {awaitPredecessor, startSuccessor} from './agent-handover.js'
import {writeFileAtomic} from '../runtime/atomic-write.js'
import {RoutingStore} from './routing-store.js'
import {DevError} from '../runtime/dev-error.js'
import {Router} from '../router/router.js'

/** The signals the daemon acts on; each is queued, so one that comes during an upgrade waits its turn. */
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGUSR2'] as const

/**
 * `dev-agent daemon`: restores every app's formation (adopting the dynos that outlived the last
 * agent), then serves the API until SIGTERM or SIGINT. Stopping stops the dynos with their grace
 * period, unless `keepDynos`: then they keep running for the next agent. SIGUSR2 is an upgrade:
 * with `handover`, this agent starts the installed build and hands it the router's socket and the
 * dynos (see agent-handover.ts); without, it goes and leaves the dynos for whatever starts the next
 * agent (systemd's Restart=always).
 */
export async function runDaemon(home: string, {keepDynos, handover, version}: {keepDynos: boolean; handover: boolean; version: string}): Promise<number> {
  // Whoever reads the agent's own output may go away first; that must not stop the agent.
  process.stdout.on('error', () => {})
  process.stderr.on('error', () => {})
  const signals = queuedSignals()
  await mkdir(home, {recursive: true, mode: 0o700})
  const paths = agentPaths(home)
  const settings = await readAgentSettings(home)
  // Started by an agent that hands over: nothing is touched before it has let go.
  const predecessor = await awaitPredecessor()
  // No build runs yet: what is under builds/ was left by a worker killed with its agent (or, after a
  // handover, by one still finishing its abort: then what it leaves waits for the next start).
  await rm(join(home, 'builds'), {recursive: true, force: true, maxRetries: 3}).catch((error: Error) => process.stderr.write(`dev-agent: cannot clear ${join(home, 'builds')}: ${error.message}\n`))
  const logs = new Map<string, AppLog>()
  const logFor = (app: string) => {
    let log = logs.get(app)
    if (!log) {
      log = new AppLog(paths.app(app).logs)
      logs.set(app, log)
    }
    return log
  }
  const apps = new AppStore(home)
  await apps.removeTombstones()
  const routing = new RoutingStore((app) => paths.app(app).dir)
  await routing.load(await apps.list())
  // Replaced only when this agent takes its dynos back from a successor that failed (see handOver).
  let dynos = new DynoManager(paths, settings, logFor, routing)
  // The router's port is taken first: an agent that cannot have it stops before touching a dyno.
  // Requests that come while the apps are restored wait for them (they would find no app: 404).
  let restored!: () => void
  const router = new Router((host) => dynos.routeFor(host), {ready: new Promise<void>((resolve) => (restored = resolve))})
  const listening = predecessor?.handle ? router.listenOn(predecessor.handle) : router.listen(settings.router_port, settings.router_host)
  const routerPort = await listening.catch((error: NodeJS.ErrnoException) => {
    throw new DevError(`the router cannot listen on port ${settings.router_port} (${error.code ?? error.message}); free it or set router_port in ${paths.settings}`)
  })
  await recordPid(home)
  await dynos.restore(apps).finally(restored)
  // An app's name from a URL, once it is known to exist (404 otherwise): only such an app has a log.
  const existing = async (app: string) => {
    await apps.config(app)
    return app
  }
  const existingLog = async (app: string) => logFor(await existing(app))
  const closeLog = async (app: string) => {
    const log = logs.get(app)
    logs.delete(app)
    await log?.close()
  }
  const info: AgentInfo = {version, node: process.version, pid: process.pid, file: process.argv[1] ?? '', started_at: new Date().toISOString(), router_port: 0, handover}
  const builds = new HostBuilds({home, apps})
  const openApi = () => {
    const parts = {apps, dynos, routing, builds, closeLog}
    return startApiServer({home, apps, slugs: new SlugStore(home), dynos, logFor, settings, destroyApp: (app) => destroyApp(parts, app)}, [
      ...logRoutes(existingLog),
      ...buildRoutes({home, apps, builds}),
      ...routingRoutes({routing, existing, logFor, getsEveryHost: (app) => dynos.getsEveryHost(app)}),
      ...agentInfoRoutes(Object.assign(info, {router_port: routerPort})),
    ])
  }
  let api = await openApi()
  process.stderr.write(`dev-agent listening on ${paths.socket}, router on port ${routerPort}\n`)
  predecessor?.serving()

  /** SIGUSR2 with `handover`: the successor's pid once it has the dynos and the router's socket. */
  const handOver = async (): Promise<number | undefined> => {
    const args = ['--handover', ...(keepDynos ? ['--keep-dynos'] : [])]
    const successor = await startSuccessor(home, args).catch((error: Error) => {
      process.stderr.write(`dev-agent: SIGUSR2: ${error.message}; this agent keeps running\n`)
      info.upgrade_error = {at: new Date().toISOString(), message: error.message}
    })
    if (successor === undefined) return undefined
    process.stderr.write(`dev-agent: SIGUSR2: handing over to the new agent (pid ${successor.pid}); the dynos keep running\n`)
    api.close()
    await dynos.detach()
    // The successor takes this very socket, unless agent.json now names another address: then
    // this router lets go of the old one first, so the successor can have the port.
    const latest = await readAgentSettings(home).catch(() => settings)
    const samePlace = (latest.router_port === 0 || latest.router_port === routerPort) && latest.router_host === settings.router_host
    if (!samePlace) router.stopAccepting()
    const sent = successor.go(samePlace ? router.listeningHandle() : undefined)
    const outcome = sent ? await successor.serving(settings.deploy_timeout_seconds * 1000) : 'exited'
    if (outcome !== 'serving') {
      if (outcome === 'timeout') successor.kill()
      const why = `the new agent (pid ${successor.pid}) ${outcome === 'exited' ? 'ended' : `did not serve within ${settings.deploy_timeout_seconds} s`} before it took over`
      process.stderr.write(`dev-agent: SIGUSR2: ${why}; this agent takes its dynos back and keeps running\n`)
      info.upgrade_error = {at: new Date().toISOString(), message: why}
      // The dynos the successor adopted or started are in dynos.json: adopted again here.
      const again = new DynoManager(paths, settings, logFor, routing)
      await again.restore(apps)
      dynos = again
      if (!samePlace) await router.listen(routerPort, settings.router_host)
      api = await openApi()
      await recordPid(home)
      return undefined
    }
    await router.handOver(settings.drain_timeout_seconds * 1000)
    return successor.pid
  }

  let signal: NodeJS.Signals
  for (;;) {
    signal = await signals.next()
    if (signal !== 'SIGUSR2' || !handover) break
    const successor = await handOver()
    if (successor !== undefined) {
      // A stop asked for during the handover is the new agent's to carry out.
      for (const pending of signals.pending()) {
        if (pending === 'SIGUSR2') continue
        try {
          process.kill(successor, pending)
        } catch {
          // It is gone already.
        }
      }
      api.closeAttached()
      await Promise.all([...logs.values()].map((log) => log.close()))
      return 0
    }
  }
  // SIGUSR2 without handover is an upgrade too: this agent goes, its dynos stay for the next one.
  const leave = keepDynos || signal === 'SIGUSR2'
  process.stderr.write(`dev-agent: ${signal}: ${leave ? 'leaving the dynos running' : 'stopping the dynos'}\n`)
  // Held deploy locks and live log streams are open connections; they end with the agent.
  api.close()
  await router.close()
  // Not waiting for the connections to be gone: attached runs keep theirs until their runs stop.
  await (leave ? dynos.detach() : dynos.shutdown())
  api.closeAttached()
  await Promise.all([...logs.values()].map((log) => log.close()))
  return 0
}

/** SIGTERM, SIGINT and SIGUSR2 as they come, one at a time (none is lost while another is handled). */
function queuedSignals(): {next(): Promise<NodeJS.Signals>; pending(): NodeJS.Signals[]} {
  const queue: NodeJS.Signals[] = []
  let wake: (() => void) | undefined
  for (const name of SIGNALS) {
    process.on(name, () => {
      queue.push(name)
      wake?.()
    })
  }
  return {
    async next() {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve))
      return queue.shift()!
    },
    pending() {
      return queue.splice(0)
    },
  }
}

/** `agent.pid`: this agent's pid, for operators and for `dev hosts setup` (rewritten by whichever agent serves). */
function recordPid(home: string): Promise<void> {
  return writeFileAtomic(join(home, 'agent.pid'), `${process.pid}\n`, 0o600)
}
