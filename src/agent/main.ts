import {agentHome, agentPaths} from './agent-home.js'
import {startApiServer} from './api-server.js'
import {dialStdio} from './dial-stdio.js'

/** The version of this agent build, set by scripts/bundle-agent.mjs. */
declare const AGENT_VERSION: string

const USAGE = 'usage: dev-agent daemon [--keep-dynos] | dial-stdio | version'

/** Each subcommand of `dev-agent`: the program that runs on each host (bundled into dist/agent.cjs). */
const commands: Record<string, (args: string[]) => Promise<number>> = {
  async version() {
    process.stdout.write(`dev-agent ${AGENT_VERSION} node-${process.version}\n`)
    return 0
  },
  async 'dial-stdio'() {
    return dialStdio(agentPaths(agentHome()).socket)
  },
  async daemon() {
    const home = agentHome()
    const server = await startApiServer(home)
    process.stderr.write(`dev-agent listening on ${home}/agent.sock\n`)
    await new Promise<void>((resolve) => {
      const stop = () => {
        server.close(() => resolve())
        // Held deploy locks are open connections; they end with the agent.
        server.closeAllConnections()
      }
      process.once('SIGTERM', stop)
      process.once('SIGINT', stop)
    })
    return 0
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
