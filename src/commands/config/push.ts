import {join} from 'node:path'

import {Command, Flags} from '@oclif/core'

import {appHostsFlags} from '../../cli/app-hosts-flags.js'
import {terminalYesNo} from '../../cli/ask-yes-no.js'
import {targetOptions} from '../../cli/target-flags.js'
import {failIfAnyFailed, showOutcomes} from '../../cli/target-output.js'
import {AppApi} from '../../remote/app-api.js'
import {onAppTargets, succeeded} from '../../remote/app-targets.js'
import {describeConfigChange} from '../../remote/config-change.js'
import {chooseOverwrites, diffVars, readEnvVars} from '../../remote/env-sync.js'
import {displayPath} from '../../runtime/display-path.js'

export default class ConfigPush extends Command {
  static summary = "Set the hosts' config vars from .env"
  static description = `Sets the vars the hosts lack, and asks before replacing a value that differs (on a terminal; otherwise those
are kept unless --overwrite). One release per host; the dynos are replaced with no downtime.`

  static examples = [{description: 'First deploy: send the config along', command: '<%= config.bin %> <%= command.id %> && <%= config.bin %> deploy'}]
  static flags = {
    ...appHostsFlags,
    file: Flags.string({description: 'the env file to read (default: ROOT/.env)', helpValue: 'PATH'}),
    overwrite: Flags.boolean({description: 'replace differing values without asking'}),
    restart: Flags.boolean({description: 'replace the running dynos (--no-restart: only make the release)', default: true, allowNo: true}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(ConfigPush)
    const options = targetOptions(flags, {local: false})
    const path = flags.file ?? join(options.root, '.env')
    const shown = displayPath(path, process.cwd())
    const local = await readEnvVars(path, shown)
    if (Object.keys(local).length === 0) this.error(`${shown} sets no variables; nothing to push`)
    // What the hosts have first, so each differing var is asked about once for all hosts.
    const before = await onAppTargets(options, (client, app) => new AppApi(client, app).configVars())
    failIfAnyFailed(before)
    const hosts = succeeded(before)
    const differing = [...new Set(hosts.flatMap(({value}) => diffVars(local, value).differing))].sort()
    const overwrite = new Set(await chooseOverwrites(differing, 'the app on its hosts', {overwrite: flags.overwrite, ask: terminalYesNo()}))
    const wanted = (config: Record<string, string>) => {
      const {added, differing: changed} = diffVars(local, config)
      return Object.fromEntries([...added, ...changed.filter((key) => overwrite.has(key))].map((key) => [key, local[key]!]))
    }
    const run = await onAppTargets({...options, hosts: hosts.map(({name}) => name)}, async (client, app) => {
      const api = new AppApi(client, app)
      const changes = wanted(await api.configVars())
      if (Object.keys(changes).length === 0) return `${app} already has these values; nothing changed`
      return describeConfigChange(api, changes, flags.restart)
    })
    const kept = differing.filter((key) => !overwrite.has(key))
    showOutcomes(run, (line) => `${line}\n`)
    if (kept.length > 0) process.stderr.write(`Kept the hosts' values of ${kept.join(', ')} (--overwrite replaces them)\n`)
  }
}
