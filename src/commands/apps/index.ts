import {Command, Flags} from '@oclif/core'

import {targetOptions} from '../../cli/target-flags.js'
import {hostFlags} from '../../cli/host-flags.js'
import {showJson, showOutcomes} from '../../cli/target-output.js'
import {onAppTargets} from '../../remote/app-targets.js'
import {DevError} from '../../runtime/dev-error.js'
import {formatBytes} from '../../runtime/format-bytes.js'

interface HostApp {
  name: string
  disk_bytes: number
}

export default class Apps extends Command {
  static summary = 'List the apps on the hosts'
  static examples = [{description: 'Every app on one host', command: '<%= config.bin %> <%= command.id %> --host vps1'}]
  static flags = {
    root: Flags.string({char: 'd', description: 'app root whose hosts to ask when none is named (default: the current directory)', helpValue: 'DIR'}),
    ...hostFlags,
    json: Flags.boolean({description: 'print the apps as JSON'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Apps)
    const run = await onAppTargets({...targetOptions(flags, {local: false}), appless: true}, async (client) => {
      const answer = await client.call('GET', '/apps')
      if (answer.status !== 200) throw new DevError(`${client.name}: ${answer.json?.message ?? answer.text}`)
      return answer.json as HostApp[]
    })
    if (flags.json) return showJson(run, (apps) => ({apps}), {withApp: false})
    showOutcomes(run, (apps) => (apps.length === 0 ? 'no apps\n' : apps.map((app) => `${app.name}\t${formatBytes(app.disk_bytes)}\n`).join('')))
  }
}
