import {Command, Flags} from '@oclif/core'

import {appFileOptions, appFlags} from '../cli/app-flags.js'
import {endAfterHangUp} from '../cli/exit-status.js'
import {RUN_VALUE_FLAGS, splitRunArgv} from '../cli/split-run-argv.js'
import {runOneOff} from '../runtime/run-one-off.js'
import {terminalPassphrase} from '../cli/ask-passphrase.js'
import {hostFlags} from '../cli/host-flags.js'
import {withAgent} from '../remote/app-on-hosts.js'
import {projectTargets} from '../remote/project-targets.js'
import {attachedRun, detachedRun} from '../remote/remote-run.js'

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
    host: Flags.string({description: 'run it on this host, as a one-off dyno of the current release with its config vars', helpValue: 'HOST'}),
    app: Flags.string({char: 'a', description: "with --host: the app's name there (default: dev.json's \"app\", app.json's \"name\", else the directory name)", helpValue: 'NAME'}),
    detached: Flags.boolean({description: 'with --host: do not wait; the output goes to the app\'s log stream (dev logs --ps run.N)'}),
    'accept-new-host-key': hostFlags['accept-new-host-key'],
  }

  static usage = '<%= command.id %> [-f PATH] [-d DIR] [-e FILE[,FILE]...] [-p PORT] [--host HOST [--detached]] [--] COMMAND [ARGS...]'

  async run(): Promise<void> {
    const {own, command} = splitRunArgv(this.argv, RUN_VALUE_FLAGS)
    const {flags} = await this.parse(Run, own)
    if (flags.host !== undefined) return this.runOnHost(flags.host, command, flags)
    if (flags.detached || flags.app !== undefined) this.error('--detached and --app go with --host (a local dev run is always attached)', {exit: 2})
    const status = await runOneOff(command, {...appFileOptions(flags), port: flags.port}, {
      env: process.env,
      cwd: process.cwd(),
      signals: process,
      interactive: process.stdin.isTTY === true,
      warn: (text) => process.stderr.write(`${text}\n`),
    })
    if (endAfterHangUp(status) !== 0) this.exit(status)
  }

  private async runOnHost(host: string, command: string[], flags: {root?: string; app?: string; detached: boolean; 'accept-new-host-key': boolean}): Promise<void> {
    if (command.length === 0) this.error('dev run needs a command, as in "dev run --host vps1 rake db:migrate"', {exit: 2})
    const {app} = await projectTargets({root: flags.root ?? process.cwd(), app: flags.app})
    const connect = {acceptNewHostKey: flags['accept-new-host-key'], askPassphrase: terminalPassphrase()}
    const status = await withAgent(host, connect, async (agent) => {
      if (!flags.detached) return attachedRun(agent, app, command, {stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, signals: process})
      const name = await detachedRun(agent, app, command)
      process.stdout.write(`Running \`${command.join(' ')}\` on ${app} as ${name}, detached: dev logs --host ${host} --ps ${name} --tail\n`)
      return 0
    })
    if (status !== 0) this.exit(status)
  }
}
