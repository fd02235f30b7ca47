import {Command, Flags} from '@oclif/core'

import {appHostsFlags} from '../../cli/app-hosts-flags.js'
import {targetOptions} from '../../cli/target-flags.js'
import {failIfAnyFailed, showJson, showOutcomes} from '../../cli/target-output.js'
import {AppApi} from '../../remote/app-api.js'
import {onAppTargets, succeeded} from '../../remote/app-targets.js'
import {agreedConfig} from '../../remote/config-agreement.js'
import {shellAssignment} from '../../runtime/env-file-edit.js'

const SHELL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

export default class Config extends Command {
  static summary = "List the app's config vars on its hosts (values only when asked)"
  static description = `Config vars reach every dyno as environment variables. Without --reveal, --json or --shell only their names are
shown, so a screen share or a terminal log shows no secret. Change them with dev config set / unset / push.`

  static examples = [
    {description: 'The names', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Names and values', command: '<%= config.bin %> <%= command.id %> --reveal'},
    {description: 'Load them into a shell', command: 'eval "$(<%= config.bin %> <%= command.id %> --shell)"'},
  ]

  static flags = {
    ...appHostsFlags,
    reveal: Flags.boolean({char: 'r', description: 'show the values too'}),
    json: Flags.boolean({description: 'print the vars (with values) as JSON', exclusive: ['shell']}),
    shell: Flags.boolean({char: 's', description: "print KEY='value' lines a shell can read (one set, when every host agrees)"}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Config)
    const run = await onAppTargets(targetOptions(flags, {local: false}), (client, app) => new AppApi(client, app).configVars())
    if (flags.json) return showJson(run, (config) => ({config}))
    if (flags.shell) {
      failIfAnyFailed(run)
      const config = agreedConfig(succeeded(run))
      // A shell variable name has no "." or "-": such a var cannot be set by a shell line.
      const unfit = Object.keys(config).filter((key) => !SHELL_NAME.test(key))
      if (unfit.length > 0) process.stderr.write(`warning: left out ${unfit.join(', ')}: not a shell variable name\n`)
      process.stdout.write(Object.entries(config).filter(([key]) => SHELL_NAME.test(key)).map(([key, value]) => `${shellAssignment(key, value)}\n`).join(''))
      return
    }
    showOutcomes(run, (config) => {
      const keys = Object.keys(config).sort()
      if (keys.length === 0) return `${run.app} has no config vars\n`
      const width = Math.max(...keys.map((key) => key.length)) + 1
      const lines = keys.map((key) => (flags.reveal ? `${`${key}:`.padEnd(width)} ${config[key]}` : key))
      return `=== ${run.app} config vars${flags.reveal ? '' : ' (values hidden: --reveal shows them)'}\n${lines.join('\n')}\n`
    })
  }
}
