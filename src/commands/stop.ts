import {Args, Command} from '@oclif/core'

import {localOrHostsFlags, targetOptions} from '../cli/target-flags.js'
import {showOutcomes} from '../cli/target-output.js'
import {AppApi} from '../remote/app-api.js'
import {onAppTargets} from '../remote/app-targets.js'

export default class Stop extends Command {
  static summary = 'Stop one dyno (the formation starts it again; a one-off run ends)'
  static description = `Like Heroku's ps:stop: the dyno gets SIGTERM (a web dyno first finishes its requests), SIGKILL after the
grace period, and is started again because the formation still asks for it. To run fewer dynos, use dev scale.
A one-off run (run.N) is stopped for good.`

  static examples = [
    {description: 'Stop a stuck worker (it starts again)', command: '<%= config.bin %> <%= command.id %> worker.1'},
    {description: 'End a detached one-off run', command: '<%= config.bin %> <%= command.id %> run.2'},
  ]

  static args = {dyno: Args.string({description: 'the dyno (web.1, run.2)', required: true})}
  static flags = localOrHostsFlags

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Stop)
    if (!/^[A-Za-z0-9_-]+\.\d+$/.test(args.dyno)) this.error(`"${args.dyno}" is not a dyno name: give one like web.1 or run.2 (dev ps lists them); to stop a whole type, dev scale TYPE=0`, {exit: 2})
    const run = await onAppTargets(targetOptions(flags, {local: true}), (client, app) => new AppApi(client, app).stop(args.dyno))
    showOutcomes(run, (stopped) => `Stopped ${stopped}${stopped.startsWith('run.') ? '' : ' (the formation starts it again)'}\n`)
  }
}
