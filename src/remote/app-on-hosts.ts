import {requireCurrentAgent} from './agent-version.js'
import {withHost} from './open-host.js'
import {RemoteAgent} from './remote-agent.js'
import type {ConnectOptions} from './ssh-connection.js'

/**
 * Runs `work` against the agent of each host in turn (one SSH connection per host), after checking
 * that agent is not older than this dev; resolves to the results in host order.
 */
export async function onEachHost<T>(hosts: readonly string[], connect: ConnectOptions, work: (agent: RemoteAgent, host: string) => Promise<T>): Promise<T[]> {
  const results: T[] = []
  for (const host of hosts) results.push(await withAgent(host, connect, (agent) => work(agent, host)))
  return results
}

/** Runs `work` against the host's agent, once it is known to be current; the connection is closed afterwards. */
export function withAgent<T>(host: string, connect: ConnectOptions, work: (agent: RemoteAgent) => Promise<T>): Promise<T> {
  return withHost(host, connect, async (ssh) => {
    const agent = new RemoteAgent(ssh)
    try {
      await requireCurrentAgent(agent)
      return await work(agent)
    } finally {
      agent.close()
    }
  })
}
