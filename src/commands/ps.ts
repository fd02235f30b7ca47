import {Command, Flags} from '@oclif/core'

import {localOrHostsFlags, targetOptions} from '../cli/target-flags.js'
import {AppApi} from '../remote/app-api.js'
import {onAppTargets} from '../remote/app-targets.js'
import {showJson, showOutcomes} from '../cli/target-output.js'
import {formatPs} from '../remote/ps-report.js'

export default class Ps extends Command {
  static summary = "List the app's dynos: state, since when, release, restarts"
  static description = `On every host of the app (--host, DEV_HOST or dev.json), in parallel; with none named, on the \`dev start\`
running in the app root. States: up, starting, crashed (waiting to be started again), stopping.`

  static examples = [
    {description: 'The dynos on the app\'s hosts', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'The processes of the local dev start, as JSON', command: '<%= config.bin %> <%= command.id %> --local --json'},
  ]

  static flags = {...localOrHostsFlags, json: Flags.boolean({description: 'print the formation and dynos as JSON'})}

  async run(): Promise<void> {
    const {flags} = await this.parse(Ps)
    const run = await onAppTargets(targetOptions(flags, {local: true}), async (client, app) => {
      const api = new AppApi(client, app)
      return {formation: await api.formation(), dynos: await api.dynos()}
    })
    if (flags.json) showJson(run, (value) => value)
    else showOutcomes(run, (value) => formatPs(value.formation, value.dynos))
  }
}
