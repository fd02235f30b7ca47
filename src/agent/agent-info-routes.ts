import type {Route} from './api-route.js'

/** What `GET /agent` says of the running agent. */
export interface AgentInfo {
  version: string
  node: string
  pid: number
  /** The agent file this daemon runs (its directory names the build's sha256 on a set-up host). */
  file: string
  started_at: string
  router_port: number
}

/** `GET /agent`: the running agent's version, file, start time and router port. */
export function agentInfoRoutes(info: AgentInfo): Route[] {
  return [['GET', /^\/agent$/, async () => ({json: info})]]
}
