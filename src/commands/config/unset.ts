import {Command, Flags} from '@oclif/core'

import {appHostsFlags} from '../../cli/app-hosts-flags.js'
import {targetOptions} from '../../cli/target-flags.js'
import {showOutcomes} from '../../cli/target-output.js'
import {AppApi} from '../../remote/app-api.js'
import {onAppTargets} from '../../remote/app-targets.js'
import {describeConfigChange} from '../../remote/config-change.js'
import {UsageError} from '../../runtime/dev-error.js'

export default class ConfigUnset extends Command {
  static summary = 'Remove config vars: a new release, dynos replaced with no downtime'
  static examples = [{description: 'Drop a var', command: '<%= config.bin %> <%= command.id %> LOG_LEVEL'}]
  static strict = false
  static usage = '<%= command.id %> KEY... [--no-restart]'
  static flags = {...appHostsFlags, restart: Flags.boolean({description: 'replace the running dynos (--no-restart: only make the release)', default: true, allowNo: true})}

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(ConfigUnset)
    const keys = argv as string[]
    if (keys.length === 0) throw new UsageError('say which vars to unset: dev config unset KEY...')
    const run = await onAppTargets(targetOptions(flags, {local: false}), (client, app) => describeConfigChange(new AppApi(client, app), Object.fromEntries(keys.map((key) => [key, null])), flags.restart))
    showOutcomes(run, (line) => `${line}\n`)
  }
}
