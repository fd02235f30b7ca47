import {Command, Flags} from '@oclif/core'

import {appHostsFlags} from '../../cli/app-hosts-flags.js'
import {targetOptions} from '../../cli/target-flags.js'
import {showJson, showOutcomes} from '../../cli/target-output.js'
import {AppApi} from '../../remote/app-api.js'
import {onAppTargets} from '../../remote/app-targets.js'
import {formatRouting} from '../../remote/routing-report.js'

export default class Router extends Command {
  static summary = "Show how each host's router treats the app: maintenance, timeouts, domains"
  static description = `The request timeout is how long the router waits for a dyno's first byte before it answers 503 (H12),
and for a web dyno still starting (H20); the idle timeout, how long an answer under way or an open WebSocket may
pass no byte either way before it is cut (H15). dev router set changes them.`

  static examples = [{description: 'The settings of the app in the current directory', command: '<%= config.bin %> <%= command.id %>'}]
  static flags = {...appHostsFlags, json: Flags.boolean({description: 'print the settings as JSON'})}

  async run(): Promise<void> {
    const {flags} = await this.parse(Router)
    const run = await onAppTargets(targetOptions(flags, {local: false}), (client, app) => new AppApi(client, app).routing())
    if (flags.json) showJson(run, ({name: _, ...routing}) => routing)
    else showOutcomes(run, formatRouting)
  }
}
