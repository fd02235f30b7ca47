import {cp} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {eventually} from '../support/agent.js'
import {freePort} from '../support/free-port.js'
import {projectRoot} from '../support/run-bin.js'
import {spawnBin} from '../support/spawn-bin.js'
import {devAsync} from '../support/dev-async.js'
import {tempApp} from '../support/temp-app.js'

const dev = (args: string[], cwd: string) => devAsync(args, {cwd, env: {DEV_HOST: ''}})

describe('operating a running dev start through .dev/dev.sock (the real dev)', () => {
  it('ps, scale web=2, restart web.1, stop and logs act on the dev start in the app root', async () => {
    // A directory name no host would take as an app name: a local dev start needs none.
    const root = join(await tempApp({}), 'my_app')
    await cp(join(projectRoot, 'fixtures/node-web'), root, {recursive: true})
    const port = await freePort()
    const start = spawnBin(['start', '-p', String(port)], {cwd: root})
    try {
      await start.waitFor(/web\.1 +\| .*listening/)
      const ps = await dev(['ps'], root)
      expect(ps.status, ps.stderr).toBe(0)
      expect(ps.stdout).toMatch(/^=== web \(1\): node server\.js --port \$PORT\nweb\.1: up .* local, pid \d+\n\n=== worker \(1\): node worker\.js\nworker\.1: up .* local, pid \d+\n$/)

      expect(await dev(['scale', 'web=2'], root)).toMatchObject({status: 0, stdout: 'Scaled my_app: now running web at 2, worker at 1\n'})
      await start.waitFor(/web\.2 +\| .*listening/)
      expect(((await (await fetch(`http://127.0.0.1:${port + 1}/`)).json()) as {dyno: string}).dyno).toBe('web.2')

      const pidOf = async (name: string) => (JSON.parse((await dev(['ps', '--json'], root)).stdout)[0].dynos as {name: string; pid: number; state: string}[]).find((dyno) => dyno.name === name)
      const before = (await pidOf('web.1'))!.pid
      expect(await dev(['restart', 'web.1'], root)).toMatchObject({status: 0, stdout: 'Restarted web.1\n'})
      const after = await eventually(() => pidOf('web.1'), (dyno) => dyno?.state === 'up' && dyno.pid !== before)
      expect(after?.pid).not.toBe(before)

      expect(await dev(['stop', 'worker.1'], root)).toMatchObject({status: 0, stdout: 'Stopped worker.1 (the formation starts it again)\n'})
      const logs = await dev(['logs', '-n', '1500', '--ps', 'web.2'], root)
      expect(logs.status, logs.stderr).toBe(0)
      expect(logs.stdout).toMatch(/^\S+ app\[web\.2\]: .*listening/m)
      for (const line of logs.stdout.trim().split('\n')) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\S+ (app|dev)\[web\.2\]: /)

      expect(await dev(['scale', 'web-1'], root)).toMatchObject({status: 0})
      // Still running: scaling down is not a crash.
      expect(start.child.exitCode).toBe(null)
    } finally {
      start.child.kill('SIGTERM')
      await start.status
    }
    // Once dev start is gone, its socket is too.
    expect(await dev(['ps'], root)).toMatchObject({status: 1, stderr: expect.stringContaining('no `dev start` running in')})
  }, 60_000)
})
