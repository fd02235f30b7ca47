import {agentHome} from './agent-home.js'
import {startApiServer} from './api-server.js'

/** The version of this agent build, set by scripts/bundle-agent.mjs. */
declare const AGENT_VERSION: string

/** `dev-agent daemon | version`: the program that runs on each host (bundled into dist/agent.cjs). */
async function main(argv: string[]): Promise<number> {
  const [command] = argv
  if (command === 'version') {
    process.stdout.write(`dev-agent ${AGENT_VERSION} node-${process.version}\n`)
    return 0
  }
  if (command === 'daemon') {
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
  }
  process.stderr.write('usage: dev-agent daemon | version\n')
  return 2
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
