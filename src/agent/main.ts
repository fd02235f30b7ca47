import {agentHome, agentPaths} from './agent-home.js'
import {dialStdio} from './dial-stdio.js'

// The daemon and the build worker are imported when run, not at start: every API call over SSH
// starts a `dial-stdio`, which should not pay for evaluating the whole agent.

/** The version of this agent build, set by scripts/bundle-agent.mjs. */
declare const AGENT_VERSION: string

const USAGE = 'usage: dev-agent daemon [--keep-dynos] [--handover] | dial-stdio | version'

/** Each subcommand of `dev-agent`: the program that runs on each host (bundled into dist/agent.cjs). */
const commands: Record<string, (args: string[]) => Promise<number>> = {
  async version() {
    process.stdout.write(`dev-agent ${AGENT_VERSION} node-${process.version}\n`)
    return 0
  },
  async 'dial-stdio'() {
    return dialStdio(agentPaths(agentHome()).socket)
  },
  /** One build on the host, in a process of its own (started by the daemon for POST /apps/:app/builds). */
  async 'build-worker'(args) {
    const {installBuiltinBuildpacks} = await import('./builtin-buildpacks.js')
    process.env.DEV_BUILDPACKS_DIR = await installBuiltinBuildpacks(agentHome())
    // Loaded here only: the daemon itself never needs the build code.
    return (await import('./build-worker.js')).runBuildWorker(args)
  },
  async daemon(args) {
    const unknown = args.find((arg) => arg !== '--keep-dynos' && arg !== '--handover')
    if (unknown !== undefined) {
      process.stderr.write(`dev-agent: unknown option ${unknown}\n${USAGE}\n`)
      return 2
    }
    const {runDaemon} = await import('./daemon.js')
    return runDaemon(agentHome(), {keepDynos: args.includes('--keep-dynos'), handover: args.includes('--handover'), version: AGENT_VERSION})
  },
}

async function main(argv: string[]): Promise<number> {
  const [name = '', ...args] = argv
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined
  if (command === undefined) {
    process.stderr.write(`${USAGE}\n`)
    return 2
  }
  return command(args)
}

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status
  },
  (error: unknown) => {
    process.stderr.write(`dev-agent: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exitCode = 1
  },
)
