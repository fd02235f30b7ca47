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
  /** An upgrade (SIGUSR2) hands the router's socket to the new agent: no connection is refused. */
  handover: boolean
  /** The last upgrade this agent called off, and why (its successor could not start). */
  upgrade_error?: {at: string; message: string}
}

/** `GET /agent`: the running agent's version, file, start time and router port. */
export function agentInfoRoutes(info: AgentInfo): Route[] {
  return [['GET', /^\/agent$/, async () => ({json: info})]]
}
