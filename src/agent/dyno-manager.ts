import type {agentPaths} from './agent-home.js'
import type {AgentSettings} from './agent-settings.js'
import {AppDynos, readReleaseChecks, readReleaseTypes} from './app-dynos.js'
import type {AppStore} from './app-store.js'
import {readDynoRecords} from './dyno-records.js'
import type {LogSink} from './log-sink.js'
import {PortAllocator} from './port-allocator.js'
import type {RoutingStore} from './routing-store.js'
import type {RoutedApp} from '../router/router.js'

/** The dynos of every app on the host, sharing one port range. */
export class DynoManager {
  private readonly apps = new Map<string, AppDynos>()
  private readonly ports: PortAllocator

  constructor(
    private readonly paths: ReturnType<typeof agentPaths>,
    private readonly settings: AgentSettings,
    private readonly logFor: (app: string) => LogSink,
    private readonly routing: RoutingStore,
  ) {
    this.ports = new PortAllocator(settings.dyno_port_range)
  }

  app(name: string): AppDynos {
    let dynos = this.apps.get(name)
    if (!dynos) {
      dynos = new AppDynos(name, this.paths.app(name), this.settings, this.ports, this.logFor(name), () => this.routing.get(name))
      this.apps.set(name, dynos)
    }
    return dynos
  }

  /**
   * At the agent's start: every app runs its current release again, adopting the dynos that
   * outlived the previous agent and starting the missing ones. An app whose release cannot run has
   * the dynos the last agent left stopped, never left unsupervised.
   */
  async restore(store: AppStore): Promise<void> {
    const apps = await Promise.all((await store.list()).map(async (name) => ({name, records: await readDynoRecords(this.paths.app(name).dynos)})))
    // Every app's surviving dynos keep their ports before any app starts a new dyno.
    for (const {records} of apps) for (const record of records) this.ports.hold(record.port)
    await Promise.all(
      apps.map(async ({name, records}) => {
        await store.reconcileConfig(name).catch(() => {})
        const release = await store.current(name).catch(() => undefined)
        try {
          if (release?.slug == null) {
            await this.app(name).reapOrphans(records)
            return
          }
          const dir = this.paths.app(name).releaseDir(release.v)
          const [types, checks] = await Promise.all([readReleaseTypes(dir, release.v), readReleaseChecks(dir, release.v)])
          await this.app(name).restore({v: release.v, dir, config: release.config, sourceVersion: release.source_version ?? null, types, checks}, records)
        } catch (error) {
          this.logFor(name).append('agent', 'api', `Error: could not restore v${release!.v}: ${(error as Error).message}`)
          await this.app(name).reapOrphans(records)
        }
      }),
    )
  }

  /**
   * The app a request's Host goes to: the app with that domain, else, when the host serves exactly
   * one app, that one.
   */
  routeFor(host: string): RoutedApp | undefined {
    const named = this.routing.appFor(host)
    if (named !== undefined) return this.apps.get(named)?.routed
    return this.onlyServing()?.routed
  }

  /** Whether requests whose Host names no domain go to `name`. */
  getsEveryHost(name: string): boolean {
    const only = this.onlyServing()
    return only !== undefined && this.apps.get(name) === only
  }

  /** The app a Host that names no domain goes to: the one app running a release, if only one is. */
  onlyServing(): AppDynos | undefined {
    let only: AppDynos | undefined
    for (const dynos of this.apps.values()) {
      if (!dynos.serving) continue
      if (only !== undefined) return undefined
      only = dynos
    }
    return only
  }

  /** A destroyed app: the router no longer finds it, and its dynos and runs stop (with the stop grace). */
  async destroy(name: string): Promise<void> {
    const dynos = this.apps.get(name)
    this.apps.delete(name)
    await dynos?.destroy()
  }

  /** Stops every dyno of every app, each with the stop grace. */
  async shutdown(): Promise<void> {
    await Promise.all([...this.apps.values()].map((dynos) => dynos.shutdown()))
  }

  /** Leaves every dyno running for the next agent (`dev-agent daemon --keep-dynos`). */
  async detach(): Promise<void> {
    await Promise.all([...this.apps.values()].map((dynos) => dynos.detach()))
  }
}
