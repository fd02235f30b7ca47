import {Args, Command, Flags} from '@oclif/core'

import {terminalPassphrase} from '../../cli/ask-passphrase.js'
import {hostFlags} from '../../cli/host-flags.js'
import {hostStatus, type HostStatus} from '../../remote/host-status.js'
import {formatBytes} from '../../runtime/format-bytes.js'
import {withHost} from '../../remote/open-host.js'
import {projectTargets, requireHosts} from '../../remote/project-targets.js'

export default class HostsStatus extends Command {
  static summary = "Show each host's agent, apps, dynos and disk use"
  static examples = [{description: 'One host', command: '<%= config.bin %> <%= command.id %> vps1'}]
  static args = {host: Args.string({description: "host (default: the app's hosts)"})}
  static strict = false

  static flags = {
    root: Flags.string({char: 'd', description: 'app root whose hosts to show when none is named (default: the current directory)', helpValue: 'DIR'}),
    'accept-new-host-key': hostFlags['accept-new-host-key'],
    json: Flags.boolean({description: 'print the status as JSON'}),
  }

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(HostsStatus)
    const named = argv as string[]
    const hosts = named.length > 0 ? named : requireHosts(await projectTargets({root: flags.root ?? process.cwd(), checkApp: 'never'}))
    const statuses: HostStatus[] = []
    for (const host of hosts) statuses.push(await withHost(host, {acceptNewHostKey: flags['accept-new-host-key'], askPassphrase: terminalPassphrase()}, hostStatus))
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(statuses, null, 2)}\n`)
      return
    }
    for (const {host, agent, apps} of statuses) {
      const up = Math.round((Date.now() - Date.parse(agent.started_at)) / 1000)
      process.stdout.write(`${host}: dev-agent ${agent.version} (node ${agent.node}), up ${formatUptime(up)}, router on port ${agent.router_port}\n`)
      if (apps.length === 0) process.stdout.write('  no apps\n')
      for (const app of apps) process.stdout.write(`  ${app.name}\t${app.release ?? 'no release'}\t${app.dynos_up}/${app.dynos} dynos up\t${formatBytes(app.disk_bytes)}\n`)
    }
  }
}

function formatUptime(seconds: number): string {
  if (seconds < 120) return `${seconds}s`
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`
  return `${Math.round(seconds / 3600)}h`
}
