import {Command, Flags} from '@oclif/core'

import {appHostsFlags} from '../../cli/app-hosts-flags.js'
import {configAssignments} from '../../cli/config-assignments.js'
import {targetOptions} from '../../cli/target-flags.js'
import {showOutcomes} from '../../cli/target-output.js'
import {AppApi} from '../../remote/app-api.js'
import {onAppTargets} from '../../remote/app-targets.js'
import {describeConfigChange} from '../../remote/config-change.js'

export default class ConfigSet extends Command {
  static summary = 'Set config vars: a new release, dynos replaced with no downtime'
  static description = `Every change is a release (dev releases lists it). The dynos are replaced with ones that have the new values:
the new web dynos must be up before the old ones stop, so no request fails; if they do not come up, nothing
changes. With --no-restart the release is made but the running dynos keep the old values until dev restart.
Values are never written to the log stream. A KEY without =VALUE reads its value from stdin, so a secret stays
out of your shell's history.`

  static examples = [
    {description: 'Two vars at once (one release)', command: '<%= config.bin %> <%= command.id %> GREETING=hello LOG_LEVEL=debug'},
    {description: 'A secret from a file', command: '<%= config.bin %> <%= command.id %> STRIPE_KEY < stripe.key'},
  ]

  static strict = false
  static usage = '<%= command.id %> KEY=VALUE... [--no-restart]'
  static flags = {...appHostsFlags, restart: Flags.boolean({description: 'replace the running dynos (--no-restart: only make the release)', default: true, allowNo: true})}

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(ConfigSet)
    const vars = await configAssignments(argv as string[])
    const run = await onAppTargets(targetOptions(flags, {local: false}), (client, app) => describeConfigChange(new AppApi(client, app), vars, flags.restart))
    showOutcomes(run, (line) => `${line}\n`)
  }
}
