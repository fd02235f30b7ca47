import {Command, Flags} from '@oclif/core'

import {hostFlags} from '../../cli/host-flags.js'
import {projectTargets} from '../../remote/project-targets.js'
import {resolveSshTarget} from '../../remote/ssh-target.js'

export default class Hosts extends Command {
  static summary = 'List the hosts this app is deployed to'
  static description = `The hosts come from --host, else DEV_HOST (comma-separated), else "hosts" in dev.json at the app root.
Each is resolved as ssh would (its ssh config Host, or [user@]host[:port]); nothing is connected to.`

  static examples = [{description: 'The hosts of the app in the current directory', command: '<%= config.bin %> <%= command.id %>'}]

  static flags = {
    root: Flags.string({char: 'd', description: 'app root (default: the current directory)', helpValue: 'DIR'}),
    host: hostFlags.host,
    json: Flags.boolean({description: 'print the hosts as JSON'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Hosts)
    const targets = await projectTargets({root: flags.root ?? process.cwd(), hosts: flags.host, checkApp: 'never'})
    const hosts = await Promise.all(targets.hosts.map(async (name) => {
      const target = await resolveSshTarget(name)
      return {name, user: target.user, hostname: target.hostname, port: target.port}
    }))
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({app: targets.app, hosts}, null, 2)}\n`)
      return
    }
    if (hosts.length === 0) {
      process.stderr.write('no hosts: pass --host HOST, set DEV_HOST, or list them in dev.json ({"hosts": ["vps1"]})\n')
      return
    }
    process.stderr.write(`app ${targets.app}, hosts from ${targets.hostsFrom}:\n`)
    for (const host of hosts) process.stdout.write(`${host.name}\t${host.user}@${host.hostname}:${host.port}\n`)
  }
}
