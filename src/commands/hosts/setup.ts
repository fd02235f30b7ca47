import {Args, Command, Flags} from '@oclif/core'

import {terminalPassphrase} from '../../cli/ask-passphrase.js'
import {hostFlags} from '../../cli/host-flags.js'
import {agentFile} from '../../remote/agent-file.js'
import {setupHost} from '../../remote/host-setup.js'
import {withHost} from '../../remote/open-host.js'
import {projectTargets, requireHosts} from '../../remote/project-targets.js'

export default class HostsSetup extends Command {
  static summary = 'Install or upgrade the dev agent on hosts, and start it'
  static description = `Connects over SSH (host keys checked against known_hosts), checks Node >= 20 on the host, uploads this dev's
agent if that build is not there yet, installs the dev-agent command and starts the daemon: a systemd service
where systemd runs (as root), else a detached process. Running it again changes nothing; with a newer dev it
upgrades the agent, and the running dynos keep serving.`

  static examples = [
    {description: 'Set up a host of your ssh config', command: '<%= config.bin %> <%= command.id %> vps1'},
    {description: 'A new host, its router on port 8080', command: '<%= config.bin %> <%= command.id %> deploy@203.0.113.5 --router-port 8080 --accept-new-host-key'},
  ]

  static args = {host: Args.string({description: 'host to set up (default: the app\'s hosts)'})}
  static strict = false

  static flags = {
    root: Flags.string({char: 'd', description: 'app root whose hosts to set up when none is named (default: the current directory)', helpValue: 'DIR'}),
    'router-port': Flags.integer({description: 'the port the HTTP router listens on (default 80)', min: 1, max: 65_535}),
    'accept-new-host-key': hostFlags['accept-new-host-key'],
  }

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(HostsSetup)
    const named = argv as string[]
    const hosts = named.length > 0 ? named : requireHosts(await projectTargets({root: flags.root ?? process.cwd(), checkApp: 'never'}))
    const file = agentFile()
    for (const host of hosts) {
      const agent = await withHost(host, {acceptNewHostKey: flags['accept-new-host-key'], askPassphrase: terminalPassphrase()}, (ssh) =>
        setupHost(ssh, {agentFile: file, routerPort: flags['router-port'], say: (text) => process.stderr.write(`${host}: ${text}\n`)}),
      )
      process.stdout.write(`${host}: dev-agent ${agent.version} (node ${agent.node}), router on port ${agent.router_port}\n`)
    }
  }
}
