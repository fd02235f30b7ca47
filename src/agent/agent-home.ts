import {homedir} from 'node:os'
import {join} from 'node:path'

/** Where the agent keeps its state: $DEV_AGENT_HOME, else /var/lib/dev-agent as root, else ~/.dev-agent. */
export function agentHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DEV_AGENT_HOME) return env.DEV_AGENT_HOME
  return process.getuid?.() === 0 ? '/var/lib/dev-agent' : join(homedir(), '.dev-agent')
}

/** The paths of the layout in DESIGN.md ("Layout on a host"). */
export function agentPaths(home: string) {
  return {
    home,
    socket: join(home, 'agent.sock'),
    settings: join(home, 'agent.json'),
    apps: join(home, 'apps'),
    app: (name: string) => {
      const dir = join(home, 'apps', name)
      return {
        dir,
        releases: join(dir, 'releases.jsonl'),
        config: join(dir, 'config.json'),
        formation: join(dir, 'formation.json'),
        /** The dynos that run, so a restarted agent can adopt them. */
        dynos: join(dir, 'dynos.json'),
        /** One FIFO per dyno for its output. */
        fifos: join(dir, 'fifos'),
        logs: join(dir, 'logs'),
        cache: join(dir, 'cache'),
        releaseDir: (v: number) => join(dir, 'releases', `v${v}`),
      }
    },
  }
}
