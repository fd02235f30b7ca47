import {Args, Command} from '@oclif/core'

import {terminalPassphrase} from '../../cli/ask-passphrase.js'
import {appHostsFlags} from '../../cli/app-hosts-flags.js'
import {onEachHost} from '../../remote/app-on-hosts.js'
import {removeDomain} from '../../remote/domains.js'
import {projectTargets, requireHosts} from '../../remote/project-targets.js'

export default class DomainsRemove extends Command {
  static summary = 'Stop routing a domain to the app on its hosts'
  static examples = [{description: 'Drop a name', command: '<%= config.bin %> <%= command.id %> www.example.com'}]
  static args = {hostname: Args.string({description: 'the domain', required: true})}
  static flags = appHostsFlags

  async run(): Promise<void> {
    const {args, flags} = await this.parse(DomainsRemove)
    const targets = await projectTargets({root: flags.root ?? process.cwd(), hosts: flags.host, app: flags.app})
    await onEachHost(requireHosts(targets), {acceptNewHostKey: flags['accept-new-host-key'], askPassphrase: terminalPassphrase()}, async (agent, host) => {
      const domain = await removeDomain(agent, targets.app, args.hostname)
      process.stdout.write(`${host}: removed ${domain.hostname} from ${targets.app}\n`)
    })
  }
}
