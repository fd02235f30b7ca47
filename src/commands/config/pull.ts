import {join} from 'node:path'

import {Command, Flags} from '@oclif/core'

import {appHostsFlags} from '../../cli/app-hosts-flags.js'
import {terminalYesNo} from '../../cli/ask-yes-no.js'
import {targetOptions} from '../../cli/target-flags.js'
import {failIfAnyFailed} from '../../cli/target-output.js'
import {AppApi} from '../../remote/app-api.js'
import {onAppTargets, succeeded} from '../../remote/app-targets.js'
import {agreedConfig} from '../../remote/config-agreement.js'
import {chooseOverwrites, diffVars, readEnvVars, writeEnvVars} from '../../remote/env-sync.js'
import {displayPath} from '../../runtime/display-path.js'

export default class ConfigPull extends Command {
  static summary = "Write the hosts' config vars into .env"
  static description = `Adds the vars .env lacks, and asks before replacing a value that differs (on a terminal; otherwise those are
kept unless --overwrite). Other lines of .env, comments included, stay as they are. A new .env is made readable
by you only.`

  static examples = [{description: 'Work locally with the production config', command: '<%= config.bin %> <%= command.id %>'}]
  static flags = {
    ...appHostsFlags,
    file: Flags.string({description: 'the env file to write (default: ROOT/.env)', helpValue: 'PATH'}),
    overwrite: Flags.boolean({description: 'replace differing values without asking'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(ConfigPull)
    const options = targetOptions(flags, {local: false})
    const path = flags.file ?? join(options.root, '.env')
    const shown = displayPath(path, process.cwd())
    const run = await onAppTargets(options, (client, app) => new AppApi(client, app).configVars())
    failIfAnyFailed(run)
    const remote = agreedConfig(succeeded(run))
    const local = await readEnvVars(path, shown)
    const {added, differing} = diffVars(remote, local)
    const replaced = await chooseOverwrites(differing, shown, {overwrite: flags.overwrite, ask: terminalYesNo()})
    const writing = [...added, ...replaced]
    if (writing.length > 0) await writeEnvVars(path, Object.fromEntries(writing.map((key) => [key, remote[key]!])))
    const kept = differing.filter((key) => !replaced.includes(key))
    const parts = [`${added.length} added`, `${replaced.length} replaced`, ...(kept.length > 0 ? [`${kept.length} kept as they were (${kept.join(', ')}; --overwrite replaces them)`] : [])]
    process.stdout.write(writing.length === 0 && kept.length === 0 ? `${shown} already has ${run.app}'s config vars\n` : `Wrote ${shown}: ${parts.join(', ')}\n`)
  }
}
