import {DevError} from '../runtime/dev-error.js'
import {runningAgent, type HostAgent} from './host-setup.js'
import {RemoteAgent} from './remote-agent.js'
import type {SshConnection} from './ssh-connection.js'

export interface HostStatus {
  host: string
  agent: HostAgent
  apps: {name: string; release: string | null; dynos_up: number; dynos: number; disk_bytes: number}[]
}

/** `dev hosts status`: the agent of a host, and each app's current release, dynos and disk use. */
export async function hostStatus(ssh: SshConnection): Promise<HostStatus> {
  const agent = await runningAgent(ssh)
  const host = ssh.target.name
  if (agent === undefined) throw new DevError(`no agent answers on ${host}: run \`dev hosts setup ${host}\``)
  const api = new RemoteAgent(ssh)
  const disk = (await api.call('GET', '/apps')).json as {name: string; disk_bytes: number}[]
  const apps = await Promise.all(
    disk.map(async ({name, disk_bytes}) => {
      const [dynos, releases] = await Promise.all([api.call('GET', `/apps/${name}/dynos`), api.call('GET', `/apps/${name}/releases`)])
      const list = dynos.json as {state: string}[]
      const current = (releases.json as {v: number}[]).at(-1)
      return {name, release: current ? `v${current.v}` : null, dynos_up: list.filter((dyno) => dyno.state === 'up').length, dynos: list.length, disk_bytes}
    }),
  )
  return {host, agent, apps}
}
