import {Command, Flags} from '@oclif/core'

import {terminalPassphrase} from '../cli/ask-passphrase.js'
import {appHostsFlags} from '../cli/app-hosts-flags.js'
import {deployProgress} from '../cli/deploy-progress.js'
import {deploy, type SlugSource} from '../remote/deploy.js'
import {formatBytes} from '../runtime/format-bytes.js'
import {projectTargets, requireHosts} from '../remote/project-targets.js'

export default class Deploy extends Command {
  static summary = 'Deploy the app to its hosts: one slug, released host by host with zero downtime'
  static description = `Checks the app as dev check does, takes each host's deploy lock, uploads the source (skipped when the host has it)
and builds the slug on the first host with the same buildpacks as dev build (or builds here with --local-build, or
deploys an existing slug with --slug), copies that same slug to every other host, runs the Procfile's release
command once, then releases on each host in turn: its new dynos start, pass their health gate, and take over from
the old ones without a dropped request. If anything fails, hosts that switched go back to what they ran: every host
serves its previous release. Hosts come from --host, else DEV_HOST, else dev.json.`

  static examples = [
    {description: 'Deploy to the hosts in dev.json', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Two hosts, building here', command: '<%= config.bin %> <%= command.id %> --host vps1 --host vps2 --local-build'},
    {description: 'A slug built earlier', command: '<%= config.bin %> <%= command.id %> --host vps1 --slug 1a2b3c4d'},
  ]

  static flags = {
    ...appHostsFlags,
    'local-build': Flags.boolean({description: 'build the slug on this machine instead of on the first host', exclusive: ['slug']}),
    slug: Flags.string({description: 'deploy this slug (an id from dev build, or a .tgz path) instead of building', helpValue: 'ID|PATH'}),
    message: Flags.string({char: 'm', description: 'a note for the release, in its description', helpValue: 'TEXT'}),
    json: Flags.boolean({description: 'print the summary as JSON'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Deploy)
    const root = flags.root ?? process.cwd()
    const targets = await projectTargets({root, hosts: flags.host, app: flags.app})
    const hosts = requireHosts(targets)
    const source: SlugSource = flags.slug ? {kind: 'slug', ref: flags.slug} : flags['local-build'] ? {kind: 'local-build'} : {kind: 'host-build'}
    const cancel = new AbortController()
    const onInterrupt = () => {
      process.stderr.write('cancelling the deploy…\n')
      cancel.abort()
    }
    process.once('SIGINT', onInterrupt)
    process.once('SIGTERM', onInterrupt)
    const progress = deployProgress(hosts)
    try {
      const summary = await deploy({
        root,
        app: targets.app,
        hosts,
        source,
        message: flags.message,
        connect: {acceptNewHostKey: flags['accept-new-host-key'], askPassphrase: terminalPassphrase()},
        signal: cancel.signal,
        report: progress.report,
      }).catch(async (error: unknown) => {
        await progress.end(error)
        throw error
      })
      await progress.end()
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`)
        return
      }
      process.stdout.write(`deployed ${summary.app}: slug ${summary.slug.sha256.slice(0, 12)} (${formatBytes(summary.slug.bytes)})\n`)
      for (const host of summary.hosts) {
        const dynos = host.dynos.map((dyno) => `${dyno.name} ${dyno.state}`).join(', ') || 'no dynos'
        const urls = host.urls.join(' ') || 'no URL yet (other apps serve this host): dev domains add NAME'
        process.stdout.write(`${host.host}\t${host.release}\t${dynos}\t${urls}\n`)
      }
    } finally {
      process.off('SIGINT', onInterrupt)
      process.off('SIGTERM', onInterrupt)
    }
  }
}
