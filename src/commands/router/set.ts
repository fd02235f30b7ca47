import {Command} from '@oclif/core'

import {appHostsFlags} from '../../cli/app-hosts-flags.js'
import {routerSettingChanges} from '../../cli/router-setting-args.js'
import {targetOptions} from '../../cli/target-flags.js'
import {showOutcomes} from '../../cli/target-output.js'
import {AppApi} from '../../remote/app-api.js'
import {onAppTargets} from '../../remote/app-targets.js'
import {formatRouting} from '../../remote/routing-report.js'

export default class RouterSet extends Command {
  static summary = "Set the router's timeouts for the app: request-timeout (H12), idle-timeout (H15)"
  static description = `request-timeout: how long the router waits for a dyno's first byte (30s by default, as Heroku's router),
and for a web dyno still starting to come up (H20); more for an app with slow endpoints, less to fail fast.
idle-timeout: how long an answer under way, or an open WebSocket, may pass no byte either way (55s by default;
whole seconds). Durations: 45s, 500ms, 2m, 1h at most; default goes back to the default. A change is in force
from the next request (and WebSocket): no release, no restart.`

  static examples = [
    {description: 'A report endpoint that takes up to two minutes', command: '<%= config.bin %> <%= command.id %> request-timeout=2m'},
    {description: 'WebSockets that stay quiet for up to five minutes', command: '<%= config.bin %> <%= command.id %> idle-timeout=300s'},
    {description: 'Back to the defaults', command: '<%= config.bin %> <%= command.id %> request-timeout=default idle-timeout=default'},
  ]

  static strict = false
  static usage = '<%= command.id %> [request-timeout=DURATION] [idle-timeout=DURATION]'
  static flags = appHostsFlags

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(RouterSet)
    const change = routerSettingChanges(argv as string[])
    const run = await onAppTargets(targetOptions(flags, {local: false}), (client, app) => new AppApi(client, app).patchRouting(change))
    showOutcomes(run, formatRouting)
  }
}
