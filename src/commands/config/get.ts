import {Args, Command} from '@oclif/core'

import {appHostsFlags} from '../../cli/app-hosts-flags.js'
import {targetOptions} from '../../cli/target-flags.js'
import {failIfAnyFailed} from '../../cli/target-output.js'
import {AppApi} from '../../remote/app-api.js'
import {onAppTargets, succeeded} from '../../remote/app-targets.js'
import {agreedConfig} from '../../remote/config-agreement.js'
import {DevError} from '../../runtime/dev-error.js'

export default class ConfigGet extends Command {
  static summary = 'Print one config var\'s value'
  static examples = [{description: 'Use a value in a script', command: 'psql "$(<%= config.bin %> <%= command.id %> DATABASE_URL)"'}]
  static args = {key: Args.string({description: 'the variable', required: true})}
  static flags = appHostsFlags

  async run(): Promise<void> {
    const {args, flags} = await this.parse(ConfigGet)
    const run = await onAppTargets(targetOptions(flags, {local: false}), (client, app) => new AppApi(client, app).configVars())
    failIfAnyFailed(run)
    const config = agreedConfig(succeeded(run).map(({name, value}) => ({name, value: {[args.key]: value[args.key]!}})))
    const value = config[args.key]
    if (value === undefined) throw new DevError(`${run.app} has no config var ${args.key} (dev config lists them)`)
    process.stdout.write(`${value}\n`)
  }
}
