import {Command} from '@oclif/core'

import {localOrHostsFlags, targetOptions} from '../cli/target-flags.js'
import {showOutcomes} from '../cli/target-output.js'
import {AppApi} from '../remote/app-api.js'
import {onAppTargets} from '../remote/app-targets.js'
import {applyScaleChanges, describeFormation, parseScaleChanges} from '../runtime/scale-request.js'

export default class Scale extends Command {
  static summary = 'Change how many dynos of each process type run'
  static description = `TYPE=N sets a quantity, TYPE+N adds and TYPE-N removes dynos. New dynos start; removed web dynos first finish
the requests they are serving (no request fails). Scaling makes no release, and a rollback keeps the formation.
Acts on every host of the app (--host, DEV_HOST or dev.json), or on the \`dev start\` running in the app root.`

  static examples = [
    {description: 'Three web dynos, no worker', command: '<%= config.bin %> <%= command.id %> web=3 worker=0'},
    {description: 'Two more web dynos', command: '<%= config.bin %> <%= command.id %> web+2'},
    {description: 'A second local web process beside a running dev start', command: '<%= config.bin %> <%= command.id %> --local web=2'},
  ]

  static strict = false
  static usage = '<%= command.id %> TYPE=N|TYPE+N|TYPE-N...'
  static flags = localOrHostsFlags

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(Scale)
    const changes = parseScaleChanges(argv as string[])
    const run = await onAppTargets(targetOptions(flags, {local: true}), async (client, app) => {
      const api = new AppApi(client, app)
      const relative = changes.some((change) => change.op !== '=')
      // Relative changes need the quantities now; absolute ones go as they are (the agent checks the types).
      const current = relative ? new Map((await api.formation()).map((entry) => [entry.type, entry.quantity])) : undefined
      const wanted = current ? applyScaleChanges(current, changes) : Object.fromEntries(changes.map((change) => [change.type, change.count]))
      return api.scale(wanted)
    })
    showOutcomes(run, (formation) => `Scaled ${run.app}: now running ${describeFormation(formation)}\n`)
  }
}
