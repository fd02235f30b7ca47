import {Args, Command} from '@oclif/core'

import {localOrHostsFlags, targetOptions} from '../cli/target-flags.js'
import {showOutcomes} from '../cli/target-output.js'
import {AppApi} from '../remote/app-api.js'
import {onAppTargets} from '../remote/app-targets.js'

export default class Restart extends Command {
  static summary = 'Restart all dynos, one process type, or one dyno'
  static description = `On a host, web dynos are replaced one at a time: the new one starts beside the old one and takes requests
once it is up; then the old one finishes its requests and stops, so no request fails. Other dynos, and the
processes of a local \`dev start\` (each has its fixed port), stop and start again. Acts on every host of the app
(--host, DEV_HOST or dev.json), or on the \`dev start\` running in the app root.`

  static examples = [
    {description: 'Every dyno', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'The web dynos', command: '<%= config.bin %> <%= command.id %> web'},
    {description: 'One dyno', command: '<%= config.bin %> <%= command.id %> worker.2'},
  ]

  static args = {target: Args.string({description: 'a process type (web) or a dyno (web.1); default: all'})}
  static flags = localOrHostsFlags

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Restart)
    const run = await onAppTargets(targetOptions(flags, {local: true}), (client, app) => new AppApi(client, app).restart(args.target))
    showOutcomes(run, (restarted) => (restarted.length === 0 ? `Nothing to restart: ${run.app} has no dynos running\n` : `Restarted ${restarted.join(', ')}\n`))
  }
}
