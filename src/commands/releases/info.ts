import {Args, Command, Flags} from '@oclif/core'

import {appHostsFlags} from '../../cli/app-hosts-flags.js'
import {targetOptions} from '../../cli/target-flags.js'
import {showJson, showOutcomes} from '../../cli/target-output.js'
import {AppApi} from '../../remote/app-api.js'
import {onAppTargets} from '../../remote/app-targets.js'
import {formatReleaseInfo, releaseSummary} from '../../remote/release-report.js'
import {parseVersion} from '../../remote/release-version.js'
import {DevError} from '../../runtime/dev-error.js'

export default class ReleasesInfo extends Command {
  static summary = 'Show one release: slug, description, user, time, config var names'
  static examples = [{description: 'The release before the current one', command: '<%= config.bin %> <%= command.id %> v4'}]
  static args = {version: Args.string({description: 'the release (v4 or 4; default: the current one)'})}
  static flags = {...appHostsFlags, json: Flags.boolean({description: 'print the release as JSON (config var names, not values)'})}

  async run(): Promise<void> {
    const {args, flags} = await this.parse(ReleasesInfo)
    const v = args.version === undefined ? undefined : parseVersion(args.version)
    const run = await onAppTargets(targetOptions(flags, {local: false}), async (client, app) => {
      const api = new AppApi(client, app)
      if (v !== undefined) return api.release(v)
      const current = (await api.releases()).at(-1)
      if (current === undefined) throw new DevError(`${client.name}: ${app} has no releases yet`)
      return current
    })
    if (flags.json) showJson(run, (release) => ({release: releaseSummary(release)}))
    else showOutcomes(run, formatReleaseInfo)
  }
}
