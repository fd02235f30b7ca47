import {Args, Command, Flags} from '@oclif/core'

import {appFileOptions, appFlags} from '../cli/app-flags.js'
import {colourEnabled} from '../cli/colour.js'
import {endAfterHangUp} from '../cli/exit-status.js'
import {withOptionalValues} from '../cli/optional-value.js'
import {startApp} from '../runtime/start-app.js'

/** Where a bare --router listens. */
const DEFAULT_ROUTER_PORT = 8080

/** What a bare --watch becomes: watch the app root. */
const WATCH_ROOT = '(app root)'

export default class Start extends Command {
  static summary = 'Run the app: every process type, with its own port, and their logs interleaved'
  static description = `Starts one of each process type in the Procfile (not "release"), each through /bin/sh -c in the app root,
with the env files loaded and PORT, PS and DYNO set per process. Instance N of the type at position I in the Procfile
gets PORT = base + 100 × I + (N - 1); the base is --port, else PORT from the env files, else $PORT, else 5000.

Output lines read "HH:MM:SS web.1  | line", whole and unchanged. When any process exits (unless --restart or
--watch), or on Ctrl-C, SIGTERM or SIGHUP, every process group gets SIGTERM, then SIGKILL after --timeout seconds; a
second Ctrl-C kills at once. dev exits with the status of the process that stopped the app (128 + signal if it was
killed), or 130/143/129. Under --watch a process that exits waits for the next file change.

While it runs, dev ps, scale, restart, stop and logs reach it through the socket .dev/dev.sock in the app root;
a second dev start in the same root is refused.`

  static examples = [
    {description: 'Run the app in the current directory', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Two web processes, no worker', command: '<%= config.bin %> <%= command.id %> -m web=2,worker=0'},
    {description: 'Only the worker (it keeps the port it has in a full start)', command: '<%= config.bin %> <%= command.id %> worker'},
    {description: 'Restart processes that crash, and restart all when a file changes', command: '<%= config.bin %> <%= command.id %> --restart --watch'},
    {description: 'Another app, on ports from 8000, without timestamps', command: '<%= config.bin %> <%= command.id %> -d fixtures/node-web -p 8000 --no-timestamp'},
  ]

  static strict = false
  static args = {
    process: Args.string({description: 'process types to start (default: all but release)'}),
  }

  static flags = {
    ...appFlags,
    formation: Flags.string({char: 'm', description: 'how many of each type: NAME=COUNT,...; all=N sets the types not listed', helpValue: 'web=2,worker=1'}),
    port: Flags.integer({char: 'p', description: 'base port (default: PORT from the env files, else $PORT, else 5000)', min: 1, max: 65_535}),
    timeout: Flags.string({char: 't', description: 'seconds a process gets to exit after SIGTERM before SIGKILL', default: '5', helpValue: 'SECONDS'}),
    timestamp: Flags.boolean({description: 'print the time on each line', default: true, allowNo: true}),
    color: Flags.string({description: 'colour the prefixes', options: ['auto', 'always', 'never'], default: 'auto'}),
    restart: Flags.string({description: 'restart a process that exits instead of stopping the app (bare --restart: on-failure)', options: ['on-failure', 'always']}),
    slug: Flags.string({description: 'run this slug (an id from dev build, or a .tgz path) instead of the working tree', helpValue: 'ID|PATH'}),
    router: Flags.string({description: 'put an HTTP router in front of the web processes, on this port (bare --router: 8080)', helpValue: 'PORT'}),
    watch: Flags.string({description: 'restart all processes when files change under the app root, or under these paths (--watch=src,lib)', helpValue: 'PATH,...'}),
  }

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(Start, withOptionalValues(this.argv, {restart: 'on-failure', watch: WATCH_ROOT, router: String(DEFAULT_ROUTER_PORT)}))
    const timeout = Number(flags.timeout)
    if (!Number.isFinite(timeout) || timeout < 0) this.error(`--timeout must be a number of seconds, got "${flags.timeout}"`, {exit: 2})
    const router = flags.router === undefined ? undefined : Number(flags.router)
    if (router !== undefined && !(Number.isInteger(router) && router >= 1 && router <= 65_535)) this.error(`--router takes a port number (1-65535), got "${flags.router}"`, {exit: 2})
    const status = await startApp(
      {
        ...appFileOptions(flags),
        formation: flags.formation,
        only: argv as string[],
        port: flags.port,
        timeout,
        timestamp: flags.timestamp,
        colour: colourEnabled(flags.color as 'auto' | 'always' | 'never', process.stdout),
        restart: (flags.restart ?? 'never') as 'never' | 'on-failure' | 'always',
        watch: flags.watch === undefined ? undefined : flags.watch === WATCH_ROOT ? [] : flags.watch.split(',').filter(Boolean),
        slug: flags.slug,
        router,
      },
      {stdout: process.stdout, signals: process, env: process.env, cwd: process.cwd()},
    )
    if (endAfterHangUp(status) !== 0) this.exit(status)
  }
}
