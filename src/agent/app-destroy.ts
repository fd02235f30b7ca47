import type {AppStore} from './app-store.js'
import type {DynoManager} from './dyno-manager.js'
import type {HostBuilds} from './host-build.js'
import type {RoutingStore} from './routing-store.js'

/** Everything the agent keeps of an app. */
export interface AppParts {
  apps: AppStore
  dynos: DynoManager
  routing: RoutingStore
  builds: HostBuilds
  /** Ends the app's log stream (its live readers too) and forgets it: a new app of the name starts a new one. */
  closeLog: (app: string) => Promise<void>
}

/**
 * `DELETE /apps/:app`: refused while a build of the app runs; otherwise every dyno and run of it
 * stops, the router forgets it (its domains are free for another app), its log ends, and
 * apps/<app>/ goes, all at once on disk (see AppStore.destroy). Slugs stay for the collection.
 */
export function destroyApp({apps, dynos, routing, builds, closeLog}: AppParts, app: string): Promise<void> {
  return builds.excluding(app, () =>
    apps.destroy(app, async () => {
      await dynos.destroy(app)
      await routing.forget(app)
      await closeLog(app)
    }),
  )
}
