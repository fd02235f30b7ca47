import {Args, Command} from '@oclif/core'

import {appHostsFlags} from '../cli/app-hosts-flags.js'
import {targetOptions} from '../cli/target-flags.js'
import {showOutcomes} from '../cli/target-output.js'
import {AppApi} from '../remote/app-api.js'
import {onAppTargets} from '../remote/app-targets.js'

export default class Maintenance extends Command {
  static summary = "Turn the app's maintenance mode on or off, or show it"
  static description = `In maintenance mode the router answers every request with 503 (H80) and the app's maintenance.html (from the
root of its slug; a plain page otherwise). The dynos keep running, and one-off runs (dev run --host) still work.`

  static examples = [
    {description: 'Before a long migration', command: '<%= config.bin %> <%= command.id %> on && <%= config.bin %> run --host vps1 rake db:migrate && <%= config.bin %> <%= command.id %> off'},
  ]

  static args = {mode: Args.string({description: 'on, off or status', options: ['on', 'off', 'status'], default: 'status'})}
  static flags = appHostsFlags

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Maintenance)
    const run = await onAppTargets(targetOptions(flags, {local: false}), (client, app) => {
      const api = new AppApi(client, app)
      return args.mode === 'status' ? api.routing() : api.patchRouting({maintenance: args.mode === 'on'})
    })
    showOutcomes(run, (routing) => `Maintenance mode is ${routing.maintenance ? 'on' : 'off'} for ${run.app}\n`)
  }
}
