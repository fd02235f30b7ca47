import {Args, Command} from '@oclif/core'

import {terminalPassphrase} from '../../cli/ask-passphrase.js'
import {appHostsFlags} from '../../cli/app-hosts-flags.js'
import {onEachHost} from '../../remote/app-on-hosts.js'
import {addDomain} from '../../remote/domains.js'
import {projectTargets, requireHosts} from '../../remote/project-targets.js'

export default class DomainsAdd extends Command {
  static summary = 'Route a domain to the app on its hosts'
  static description = 'A hostname (www.example.com, stored in punycode when it has non-ASCII letters) or a wildcard (*.example.com). A domain belongs to one app per host.'
  static examples = [{description: 'Two names for the app', command: '<%= config.bin %> <%= command.id %> www.example.com && <%= config.bin %> <%= command.id %> "*.example.com"'}]
  static args = {hostname: Args.string({description: 'the domain', required: true})}
  static flags = appHostsFlags

  async run(): Promise<void> {
    const {args, flags} = await this.parse(DomainsAdd)
    const targets = await projectTargets({root: flags.root ?? process.cwd(), hosts: flags.host, app: flags.app})
    await onEachHost(requireHosts(targets), {acceptNewHostKey: flags['accept-new-host-key'], askPassphrase: terminalPassphrase()}, async (agent, host) => {
      const domain = await addDomain(agent, targets.app, args.hostname)
      process.stdout.write(`${host}: added ${domain.hostname} to ${targets.app}\n`)
    })
  }
}
