import {Args, Command, Flags} from '@oclif/core'

import {terminalQuestion} from '../../cli/ask-yes-no.js'
import {targetOptions} from '../../cli/target-flags.js'
import {hostFlags} from '../../cli/host-flags.js'
import {showOutcomes} from '../../cli/target-output.js'
import {AppApi} from '../../remote/app-api.js'
import {onAppTargets} from '../../remote/app-targets.js'
import {UsageError} from '../../runtime/dev-error.js'

export default class AppsDestroy extends Command {
  static summary = 'Remove an app from its hosts: dynos, releases, config, logs and domains'
  static description = 'Cannot be undone. Slugs other apps use stay; the rest go with the next clean-up.'
  static examples = [{description: 'Remove shop from vps1', command: '<%= config.bin %> <%= command.id %> shop --confirm shop --host vps1'}]
  static args = {app: Args.string({description: 'the app', required: true})}
  static flags = {
    root: Flags.string({char: 'd', description: 'app root whose hosts to use when none is named (default: the current directory)', helpValue: 'DIR'}),
    ...hostFlags,
    confirm: Flags.string({description: "the app's name again, to confirm", helpValue: 'APP'}),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(AppsDestroy)
    let confirm = flags.confirm
    const ask = confirm === undefined ? terminalQuestion() : undefined
    if (ask) {
      process.stderr.write(`This removes ${args.app} for good: its dynos, releases, config vars, logs and domains.\n`)
      confirm = await ask(`Type ${args.app} to confirm: `)
    }
    if (confirm !== args.app) throw new UsageError(confirm === undefined ? `confirm with --confirm ${args.app}` : `"${confirm}" is not ${args.app}; nothing was removed`)
    const run = await onAppTargets({...targetOptions(flags, {local: false}), app: args.app}, (client, app) => new AppApi(client, app).destroy())
    showOutcomes(run, ({name}) => `Destroyed ${name}\n`)
  }
}
