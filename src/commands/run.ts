import {Command, Flags} from '@oclif/core'

import {appFileOptions, appFlags} from '../cli/app-flags.js'
import {endAfterHangUp} from '../cli/exit-status.js'
import {RUN_VALUE_FLAGS, splitRunArgv} from '../cli/split-run-argv.js'
import {runOneOff} from '../runtime/run-one-off.js'

export default class Run extends Command {
  static summary = "Run a one-off command with the app's environment"
  static description = `Runs COMMAND in the app root with the env files loaded, PORT set to the base port and PS=run.1, attached to
your terminal (interactive programs work). dev exits with the command's status (128 + signal if it was killed).

If COMMAND names a Procfile type, its command runs with ARGS appended. A single argument is run by /bin/sh, so
"dev run 'echo $PORT'" works; several arguments are run as they are, without a shell. dev's own flags go before
the command; everything after the command belongs to it (use -- to be explicit).`

  static examples = [
    {description: 'Migrate the database', command: '<%= config.bin %> <%= command.id %> rake db:migrate --trace'},
    {description: 'Run the worker type once, with an extra argument', command: '<%= config.bin %> <%= command.id %> worker --once'},
    {description: 'A shell with the app environment', command: '<%= config.bin %> <%= command.id %> bash'},
    {description: "dev's own flags go before the command", command: '<%= config.bin %> <%= command.id %> -e .env.test -- npm test'},
  ]

  static strict = false
  static flags = {
    ...appFlags,
    port: Flags.integer({char: 'p', description: 'PORT for the command (default: PORT from the env files, else $PORT, else 5000)', min: 1, max: 65_535}),
  }

  static usage = '<%= command.id %> [-f PATH] [-d DIR] [-e FILE[,FILE]...] [-p PORT] [--] COMMAND [ARGS...]'

  async run(): Promise<void> {
    const {own, command} = splitRunArgv(this.argv, RUN_VALUE_FLAGS)
    const {flags} = await this.parse(Run, own)
    const status = await runOneOff(command, {...appFileOptions(flags), port: flags.port}, {
      env: process.env,
      cwd: process.cwd(),
      signals: process,
      interactive: process.stdin.isTTY === true,
      warn: (text) => process.stderr.write(`${text}\n`),
    })
    if (endAfterHangUp(status) !== 0) this.exit(status)
  }
}
