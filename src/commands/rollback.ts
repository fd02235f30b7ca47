import {Args, Command} from '@oclif/core'

import {appHostsFlags} from '../cli/app-hosts-flags.js'
import {targetOptions} from '../cli/target-flags.js'
import {showOutcomes} from '../cli/target-output.js'
import {AppApi} from '../remote/app-api.js'
import {onAppTargets} from '../remote/app-targets.js'
import {parseVersion} from '../remote/release-version.js'
import {DevError} from '../runtime/dev-error.js'

export default class Rollback extends Command {
  static summary = 'Go back to an earlier release: its slug and config vars, as a new release'
  static description = `Makes a new release with the slug and config vars of vN (default: the release before the current one) and
switches to it with no downtime. It does not change the formation (how many dynos run), the domains, or
anything your app stored (a database migration is not undone).`

  static examples = [
    {description: 'Undo the last deploy', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Back to a named release', command: '<%= config.bin %> <%= command.id %> v3'},
  ]

  static args = {version: Args.string({description: 'the release to go back to (v3 or 3)'})}
  static flags = appHostsFlags

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Rollback)
    const named = args.version === undefined ? undefined : parseVersion(args.version)
    const run = await onAppTargets(targetOptions(flags, {local: false}), async (client, app) => {
      const api = new AppApi(client, app)
      const releases = await api.releases()
      const to = named ?? previousWithSlug(releases, app)
      const release = await api.rollback(to)
      return {to, release}
    })
    showOutcomes(run, ({to, release}) => `Rolled back ${run.app} to v${to}: release v${release.v}, slug ${release.slug?.slice(0, 12)} with v${to}'s config vars\n`)
    process.stderr.write('The formation, the domains and the data your app stored are not rolled back.\n')
  }
}

/** The release before the current one that has a slug to go back to. */
function previousWithSlug(releases: readonly {v: number; slug: string | null}[], app: string): number {
  const earlier = releases.slice(0, -1).filter((release) => release.slug !== null)
  const to = earlier.at(-1)
  if (to === undefined) throw new DevError(`${app} has no earlier release with a slug to roll back to`)
  return to.v
}
