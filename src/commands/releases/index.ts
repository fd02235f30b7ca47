import {Command, Flags} from '@oclif/core'

import {appHostsFlags} from '../../cli/app-hosts-flags.js'
import {targetOptions} from '../../cli/target-flags.js'
import {showJson, showOutcomes} from '../../cli/target-output.js'
import {AppApi} from '../../remote/app-api.js'
import {onAppTargets} from '../../remote/app-targets.js'
import {formatReleases, releaseSummary} from '../../remote/release-report.js'

export default class Releases extends Command {
  static summary = "List the app's releases, newest first"
  static description = 'A release is a slug plus a set of config vars: every deploy, config change and rollback makes one.'
  static examples = [{description: 'The last 10', command: '<%= config.bin %> <%= command.id %>'}]
  static flags = {
    ...appHostsFlags,
    num: Flags.integer({char: 'n', description: 'how many to show', default: 10, min: 1}),
    json: Flags.boolean({description: 'print the releases as JSON (config var names, not values)'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Releases)
    const run = await onAppTargets(targetOptions(flags, {local: false}), async (client, app) => (await new AppApi(client, app).releases()).slice(-flags.num))
    if (flags.json) showJson(run, (releases) => ({releases: [...releases].reverse().map(releaseSummary)}))
    else showOutcomes(run, (releases) => formatReleases(run.app, releases))
  }
}
