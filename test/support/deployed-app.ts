import {cp, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {expect} from 'vitest'

import {projectRoot, runBin} from './run-bin.js'
import {startSshHosts} from './ssh-hosts.js'
import {tempApp} from './temp-app.js'

/** Test hosts with the agent set up, and the agent-app fixture as an app named shop that targets them. */
export async function hostsAndApp(count: number) {
  const ssh = await startSshHosts(count)
  for (const host of ssh.hosts) expect(runBin(['hosts', 'setup', host.name, '--router-port', String(host.routerPort)], {env: ssh.env}).status).toBe(0)
  const root = await tempApp({})
  await cp(join(projectRoot, 'fixtures/agent-app'), root, {recursive: true})
  await writeFile(join(root, 'dev.json'), JSON.stringify({app: 'shop', hosts: ssh.hosts.map((host) => host.name)}))
  return {...ssh, root}
}

/** The same, deployed once (v1 serving on every host). */
export async function deployedApp(count: number) {
  const setup = await hostsAndApp(count)
  const deployed = runBin(['deploy', '-d', setup.root], {env: setup.env})
  expect(deployed.status, deployed.stderr).toBe(0)
  return setup
}
