import type {agentPaths} from './agent-home.js'
import type {AgentSettings} from './agent-settings.js'
import {AppDynos, readReleaseTypes} from './app-dynos.js'
import type {AppStore} from './app-store.js'
import {readDynoRecords} from './dyno-records.js'
import type {LogSink} from './log-sink.js'
import {PortAllocator} from './port-allocator.js'

/** The dynos of every app on the host, sharing one port range. */
export class DynoManager {
  private readonly apps = new Map<string, AppDynos>()
  private readonly ports: PortAllocator

  constructor(
    private readonly paths: ReturnType<typeof agentPaths>,
    private readonly settings: AgentSettings,
    private readonly logFor: (app: string) => LogSink,
  ) {
    this.ports = new PortAllocator(settings.dyno_port_range)
  }

  app(name: string): AppDynos {
    let dynos = this.apps.get(name)
    if (!dynos) {
      dynos = new AppDynos(name, this.paths.app(name), this.settings, this.ports, this.logFor(name))
      this.apps.set(name, dynos)
    }
    return dynos
  }

  /**
   * At the agent's start: every app runs its current release again, adopting the dynos that
   * outlived the previous agent and starting the missing ones.
   */
  async restore(store: AppStore): Promise<void> {
    await Promise.all(
      (await store.list()).map(async (name) => {
        const release = await store.current(name)
        if (release?.slug == null) return
        const dir = this.paths.app(name).releaseDir(release.v)
        try {
          const types = await readReleaseTypes(dir, release.v)
          const records = await readDynoRecords(this.paths.app(name).dynos)
          await this.app(name).restore({v: release.v, dir, config: release.config, sourceVersion: release.source_version ?? null, types}, records)
        } catch (error) {
          this.logFor(name).append('agent', 'api', `Error: could not restore v${release.v}: ${(error as Error).message}`)
        }
      }),
    )
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
