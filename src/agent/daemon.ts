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
import {agentInfoRoutes} from './agent-info-routes.js'
import {RoutingStore} from './routing-store.js'
import {DevError} from '../runtime/dev-error.js'
import {Router} from '../router/router.js'

/**
 * `dev-agent daemon`: restores every app's formation (adopting the dynos that outlived the last
 * agent), then serves the API until SIGTERM or SIGINT. Stopping stops the dynos with their grace
 * period, unless `keepDynos` (an agent upgrade): then they keep running for the next agent.
 */
export async function runDaemon(home: string, {keepDynos, version}: {keepDynos: boolean; version: string}): Promise<number> {
  // Whoever reads the agent's own output may go away first; that must not stop the agent.
  process.stdout.on('error', () => {})
  process.stderr.on('error', () => {})
  await mkdir(home, {recursive: true, mode: 0o700})
  const paths = agentPaths(home)
  // No build runs yet: what is under builds/ was left by a worker killed with its agent.
  await rm(join(home, 'builds'), {recursive: true, force: true})
  const settings = await readAgentSettings(home)
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
  const dynos = new DynoManager(paths, settings, logFor, routing)
  // The router's port is taken first: an agent that cannot have it stops before touching a dyno.
  // Requests that come while the apps are restored wait for them (they would find no app: 404).
  let restored!: () => void
  const router = new Router((host) => dynos.routeFor(host), {ready: new Promise<void>((resolve) => (restored = resolve))})
  const routerPort = await router.listen(settings.router_port, settings.router_host).catch((error: NodeJS.ErrnoException) => {
    throw new DevError(`the router cannot listen on port ${settings.router_port} (${error.code ?? error.message}); free it or set router_port in ${paths.settings}`)
  })
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
  const builds = new HostBuilds({home, apps})
  const parts = {apps, dynos, routing, builds, closeLog}
  const api = await startApiServer({home, apps, slugs: new SlugStore(home), dynos, logFor, settings, destroyApp: (app) => destroyApp(parts, app)}, [
    ...logRoutes(existingLog),
    ...buildRoutes({home, apps, builds}),
    ...routingRoutes({routing, existing, logFor}),
    ...agentInfoRoutes({version, node: process.version, pid: process.pid, file: process.argv[1] ?? '', started_at: new Date().toISOString(), router_port: routerPort}),
  ])
  process.stderr.write(`dev-agent listening on ${paths.socket}, router on port ${routerPort}\n`)

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve)
    process.once('SIGINT', resolve)
    // An upgrade: this agent goes, its dynos stay for the next one to adopt.
    process.once('SIGUSR2', resolve)
  })
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
