import {Command, Flags} from '@oclif/core'

import {terminalPassphrase} from '../../cli/ask-passphrase.js'
import {appHostsFlags} from '../../cli/app-hosts-flags.js'
import {onEachHost} from '../../remote/app-on-hosts.js'
import {listDomains} from '../../remote/domains.js'
import {projectTargets, requireHosts} from '../../remote/project-targets.js'

export default class Domains extends Command {
  static summary = "List the app's domains on its hosts"
  static description = `The router of each host sends a request to the app whose domain its Host header names (an exact name first, then
the longest wildcard); a host that serves one app only sends it every request.`

  static examples = [{description: 'The domains of the app in the current directory', command: '<%= config.bin %> <%= command.id %>'}]
  static flags = {...appHostsFlags, json: Flags.boolean({description: 'print the domains as JSON'})}

  async run(): Promise<void> {
    const {flags} = await this.parse(Domains)
    const targets = await projectTargets({root: flags.root ?? process.cwd(), hosts: flags.host, app: flags.app})
    const hosts = requireHosts(targets)
    const found = await onEachHost(hosts, {acceptNewHostKey: flags['accept-new-host-key'], askPassphrase: terminalPassphrase()}, async (agent, host) => ({host, domains: await listDomains(agent, targets.app)}))
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(found, null, 2)}\n`)
      return
    }
    for (const {host, domains} of found) {
      if (domains.length === 0) process.stderr.write(`${host}: ${targets.app} has no domains\n`)
      for (const domain of domains) process.stdout.write(`${host}\t${domain.hostname}\n`)
    }
  }
}
