import {spawn} from 'node:child_process'
import {readdir, readFile, writeFile} from 'node:fs/promises'
import {join, relative} from 'node:path'

import {describe, expect, it} from 'vitest'

import {eventually} from '../support/agent.js'
import {deployedApp} from '../support/deployed-app.js'
import {get, startLoad} from '../support/http-load.js'
import {projectRoot, runBin} from '../support/run-bin.js'
import {spawnBin} from '../support/spawn-bin.js'
import {devAsync} from '../support/dev-async.js'
import {tempApp} from '../support/temp-app.js'

interface PsJson {
  host: string
  app: string
  formation: {type: string; quantity: number}[]
  dynos: {name: string; state: string; pid: number | null; release: string}[]
}

const psJson = async (root: string, env: NodeJS.ProcessEnv): Promise<PsJson[]> => {
  const ps = await devAsync(['ps', '--json'], {cwd: root, env})
  expect(ps.status, ps.stderr).toBe(0)
  return JSON.parse(ps.stdout) as PsJson[]
}

/** The files under `dir` (relative paths) whose bytes contain any of `needles`. */
async function filesHolding(dir: string, needles: string[]): Promise<string[]> {
  const found: string[] = []
  for (const entry of await readdir(dir, {recursive: true, withFileTypes: true})) {
    if (!entry.isFile()) continue
    const path = join(entry.parentPath, entry.name)
    const bytes = await readFile(path).catch(() => Buffer.alloc(0))
    if (needles.some((needle) => bytes.includes(needle))) found.push(relative(dir, path))
  }
  return found
}

describe('operating an app on its hosts (the real dev, real sshd, agents and routers)', () => {
  it('ps, scale, restart and stop, under continuous load with no failed request; logs, also --tail', async () => {
    const {hosts, env, root} = await deployedApp(1)
    const port = hosts[0]!.routerPort
    const ps = runBin(['ps'], {cwd: root, env})
    expect(ps.status, ps.stderr).toBe(0)
    expect(ps.stdout).toMatch(/^=== web \(1\): node server\.js\nweb\.1: up \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(~ \d+s ago\) v1, pid \d+\n$/)

    const load = startLoad([port])
    expect(await devAsync(['scale', 'web=2', 'worker=1'], {cwd: root, env})).toMatchObject({status: 0, stdout: 'Scaled shop: now running web at 2, worker at 1\n'})
    const scaled = await psJson(root, env)
    expect(scaled).toMatchObject([{host: 'vps1', app: 'shop', formation: [{type: 'web', quantity: 2}, {type: 'worker', quantity: 1}]}])
    expect(scaled[0]!.dynos.map((dyno) => `${dyno.name} ${dyno.state}`).sort()).toEqual(['web.1 up', 'web.2 up', 'worker.1 up'])
    expect(await devAsync(['scale', 'web-1'], {cwd: root, env})).toMatchObject({status: 0, stdout: 'Scaled shop: now running web at 1, worker at 1\n'})
    expect(await devAsync(['restart', 'web'], {cwd: root, env})).toMatchObject({status: 0, stdout: 'Restarted web.1\n'})
    const workerPid = (await psJson(root, env))[0]!.dynos.find((dyno) => dyno.name === 'worker.1')!.pid
    expect(await devAsync(['stop', 'worker.1'], {cwd: root, env})).toMatchObject({status: 0, stdout: 'Stopped worker.1 (the formation starts it again)\n'})
    const worker = await eventually(
      async () => (await psJson(root, env))[0]!.dynos.find((dyno) => dyno.name === 'worker.1'),
      (dyno) => dyno?.state === 'up' && dyno.pid !== workerPid,
    )
    expect(worker).toMatchObject({state: 'up'})
    expect(worker?.pid).not.toBe(workerPid)
    const counts = await load.stop()
    console.log('ps/scale/restart/stop under load:', counts)
    expect(counts).toMatchObject({errors: 0, other: []})
    expect(counts.ok).toBe(counts.sent)

    // Bad input: a clear line each, nothing changed.
    expect(runBin(['scale', 'web=two'], {cwd: root, env})).toMatchObject({status: 2, stderr: 'error: cannot read "web=two": use TYPE=N, TYPE+N or TYPE-N (e.g. web=3, web+2, worker-1)\n'})
    expect(runBin(['scale', 'clock+1'], {cwd: root, env})).toMatchObject({status: 2, stderr: 'error: the app has no process type clock; it has web, worker\n'})
    expect(runBin(['stop', 'web'], {cwd: root, env}).status).toBe(2)
    expect(runBin(['restart', 'web.9'], {cwd: root, env})).toMatchObject({status: 1})

    // The load's router lines fill the 1,500 kept; what is done after them is there.
    expect(runBin(['scale', 'worker=0'], {cwd: root, env}).status).toBe(0)
    const logs = runBin(['logs', '--ps', 'api'], {cwd: root, env})
    expect(logs.status, logs.stderr).toBe(0)
    expect(logs.stdout).toMatch(/^\S+ agent\[api\]: Scaled to worker@0 by \S+$/m)
    expect(runBin(['logs', '-n', '3', '-s', 'router'], {cwd: root, env}).stdout).toMatch(/^\S+ router: at=info method=GET path="\/" host=shop\.example\.com .* status=200 /m)
    const onlyAgent = runBin(['logs', '-n', '3', '--source', 'agent', '--ps', 'worker.1'], {cwd: root, env}).stdout.trim().split('\n')
    expect(onlyAgent.length).toBeGreaterThanOrEqual(2)
    expect(onlyAgent.length).toBeLessThanOrEqual(3)
    for (const line of onlyAgent) expect(line).toMatch(/^\S+ agent\[worker\.1\]: /)

    // --tail: a request made now shows up as it happens; Ctrl-C ends it quietly.
    const tail = spawnBin(['logs', '--tail', '-n', '1', '--source', 'router'], {cwd: root, env})
    await tail.waitFor(/router: /)
    await get(port, '/tail-marker')
    await tail.waitFor(/path="\/tail-marker"/)
    tail.child.kill('SIGINT')
    expect(await tail.status).toBe(0)
  }, 90_000)

  it('config, config set/unset, releases and rollback under load; maintenance mode and back', async () => {
    const {hosts, env, root} = await deployedApp(1)
    const port = hosts[0]!.routerPort
    const load = startLoad([port])
    const set = await devAsync(['config', 'set', 'GREETING=hey there', 'SECRET=s3cr3t'], {cwd: root, env})
    expect(set).toMatchObject({status: 0, stdout: 'Set GREETING, SECRET on shop: release v2 (dynos replaced)\n'})
    expect((await get(port)).body).toMatch(/^hey there from web\.1 of v2/)
    // A value read from stdin stays out of argv and shell history.
    const fromStdin = spawnBin(['config', 'set', 'TOKEN'], {cwd: root, env, stdin: 'tok-123\n'})
    expect(await fromStdin.status, fromStdin.stderr()).toBe(0)
    expect((await devAsync(['config'], {cwd: root, env})).stdout).toBe('=== shop config vars (values hidden: --reveal shows them)\nGREETING\nSECRET\nTOKEN\n')
    expect((await devAsync(['config', '--reveal'], {cwd: root, env})).stdout).toBe('=== shop config vars\nGREETING: hey there\nSECRET:   s3cr3t\nTOKEN:    tok-123\n')
    expect((await devAsync(['config', '--shell'], {cwd: root, env})).stdout).toBe("GREETING='hey there'\nSECRET='s3cr3t'\nTOKEN='tok-123'\n")
    expect(JSON.parse((await devAsync(['config', '--json'], {cwd: root, env})).stdout)).toEqual([{host: 'vps1', app: 'shop', config: {GREETING: 'hey there', SECRET: 's3cr3t', TOKEN: 'tok-123'}}])
    expect((await devAsync(['config', 'get', 'TOKEN'], {cwd: root, env})).stdout).toBe('tok-123\n')
    expect(await devAsync(['config', 'get', 'NOPE'], {cwd: root, env})).toMatchObject({status: 1, stderr: 'error: shop has no config var NOPE (dev config lists them)\n'})
    expect(await devAsync(['config', 'unset', 'SECRET'], {cwd: root, env})).toMatchObject({status: 0, stdout: 'Unset SECRET on shop: release v4 (dynos replaced)\n'})

    const releases = await devAsync(['releases'], {cwd: root, env})
    expect(releases.stdout).toMatch(/^=== shop releases \(current: v4\)\nv4 {2}Unset SECRET config vars +\S+ +\d{4}-.* UTC \(~ \d+s ago\)\nv3 .*\nv2 .*\nv1 {2}Deploy [0-9a-f]{7} .*\n$/)
    const json = JSON.parse((await devAsync(['releases', '--json', '-n', '2'], {cwd: root, env})).stdout)
    expect(json).toMatchObject([{host: 'vps1', app: 'shop', releases: [{v: 4, config_keys: ['GREETING', 'TOKEN']}, {v: 3, config_keys: ['GREETING', 'SECRET', 'TOKEN']}]}])
    // Release records show names, never values.
    expect(JSON.stringify(json)).not.toContain('s3cr3t')
    const info = await devAsync(['releases', 'info', 'v2'], {cwd: root, env})
    expect(info.stdout).toMatch(/^=== Release v2\nBy: {10}\S+\nChange: {6}Set GREETING, SECRET config vars\nWhen: .*\nSlug: {8}[0-9a-f]{64}\nSource: {6}\S+\nConfig vars: GREETING, SECRET\n$/)
    expect(info.stdout).not.toContain('s3cr3t')

    const rollback = await devAsync(['rollback'], {cwd: root, env})
    expect(rollback.status, rollback.stderr).toBe(0)
    expect(rollback.stdout).toMatch(/^Rolled back shop to v3: release v5, slug [0-9a-f]{12} with v3's config vars\n$/)
    expect(rollback.stderr).toBe('The formation, the domains and the data your app stored are not rolled back.\n')
    expect((await devAsync(['config', 'get', 'SECRET'], {cwd: root, env})).stdout).toBe('s3cr3t\n')
    expect((await devAsync(['rollback', 'v1'], {cwd: root, env})).stdout).toMatch(/^Rolled back shop to v1: release v6/)
    expect((await get(port)).body).toMatch(/^hello from web\.1 of v6/)
    const counts = await load.stop()
    console.log('config set/unset and rollback under load:', counts)
    expect(counts).toMatchObject({errors: 0, other: []})

    // Values never reach the log stream.
    // On the host, only the config and the ledger (both 0600) hold them: no log file (app.log has
    // every line, also those the load pushed out of memory), no other state file.
    const holders = await filesHolding(hosts[0]!.agentHome, ['s3cr3t', 'tok-123'])
    expect(holders).toContain('apps/shop/releases.jsonl')
    expect(holders.filter((path) => !['apps/shop/config.json', 'apps/shop/releases.jsonl'].includes(path))).toEqual([])
    // The load's lines may have rotated app.log (10 MiB) meanwhile: the rotated files count too.
    const logs = join(hosts[0]!.agentHome, 'apps/shop/logs')
    const logText = (await Promise.all((await readdir(logs)).filter((name) => name.startsWith('app.log')).map((name) => readFile(join(logs, name), 'utf8')))).join('')
    expect(logText).toMatch(/agent\[api\]: Release v2 created by \S+: Set GREETING, SECRET config vars/)

    // --no-restart: the release is made; the running dynos keep their config until they restart.
    expect(runBin(['config', 'set', 'GREETING=later', '--no-restart'], {cwd: root, env})).toMatchObject({status: 0, stdout: 'Set GREETING on shop: release v7 (running dynos keep the old values until dev restart)\n'})
    expect((await get(port)).body).toMatch(/^hello from web\.1 of v6/)
    expect(runBin(['restart'], {cwd: root, env}).status).toBe(0)
    expect((await get(port)).body).toMatch(/^later from web\.1 of v7/)

    expect(runBin(['maintenance'], {cwd: root, env}).stdout).toBe('Maintenance mode is off for shop\n')
    // Any user name, recorded as it is.
    expect(runBin(['maintenance', 'on'], {cwd: root, env: {...env, DEV_USER: 'zoë 用户'}}).stdout).toBe('Maintenance mode is on for shop\n')
    expect(runBin(['logs', '-n', '1', '--ps', 'api'], {cwd: root, env}).stdout).toMatch(/agent\[api\]: Maintenance mode enabled by zoë 用户\n$/)
    expect(await get(port)).toMatchObject({status: 503})
    // One-off runs still work in maintenance mode.
    expect(runBin(['run', '--host', 'vps1', 'echo', 'migrating'], {cwd: root, env})).toMatchObject({status: 0, stdout: 'migrating\n'})
    expect(runBin(['logs', '-n', '1', '--source', 'router'], {cwd: root, env}).stdout).toMatch(/router: at=info code=H80 desc="Maintenance mode"/)
    expect(runBin(['maintenance', 'off'], {cwd: root, env}).stdout).toBe('Maintenance mode is off for shop\n')
    expect(await get(port)).toMatchObject({status: 200})

    // The router's timeouts for the app: shown, set (and logged), in force at once, and back to the defaults.
    expect(runBin(['router'], {cwd: root, env})).toMatchObject({
      status: 0,
      stdout:
        '=== shop router settings\nMaintenance:     off\nRequest timeout: 30s (no first byte from a dyno in this time: 503, H12)\n' +
        'Idle timeout:    55s (an answer or WebSocket quiet both ways this long is cut: H15)\n' +
        'Domains:         none (and any other Host: the only app serving on this host)\n',
    })
    const timeouts = runBin(['router', 'set', 'request-timeout=1500ms', 'idle-timeout=2m'], {cwd: root, env: {...env, DEV_USER: 'ann'}})
    expect(timeouts.status, timeouts.stderr).toBe(0)
    expect(timeouts.stdout).toContain('\nRequest timeout: 1.5s (')
    expect(timeouts.stdout).toContain('\nIdle timeout:    120s (')
    expect(runBin(['logs', '-n', '2', '--ps', 'api'], {cwd: root, env}).stdout).toMatch(/agent\[api\]: Request timeout \(H12\) set to 1\.5 s by ann\n.*agent\[api\]: Idle timeout \(H15\) set to 120 s by ann\n$/)
    // A dyno slower than the new timeout: the router's 503 after 1.5 s, not the answer after 4 s.
    expect(await get(port, '/slow?ms=4000')).toMatchObject({status: 503})
    expect(runBin(['logs', '-n', '1', '--source', 'router'], {cwd: root, env}).stdout).toMatch(/router: at=error code=H12 desc="Request timeout" method=GET path="\/slow\?ms=4000" .* service=1[4-9]\d\dms status=503/)
    // Mistakes are named before anything is sent; nothing changes.
    expect(runBin(['router', 'set', 'idle-timeout=1.5s'], {cwd: root, env})).toMatchObject({status: 2, stderr: 'error: idle-timeout=1.5s is not whole seconds; the idle timeout is checked once a second\n'})
    expect(runBin(['router', 'set', 'request-timeout=2h'], {cwd: root, env})).toMatchObject({status: 2, stderr: 'error: request-timeout=2h is out of range; give at least 1ms and at most 1h\n'})
    expect(runBin(['router', 'set', 'request-timeout=soon'], {cwd: root, env})).toMatchObject({status: 2, stderr: 'error: request-timeout=soon is not a duration; give one like 30s, 500ms or 2m (or default)\n'})
    expect(runBin(['router', 'set', 'timeout=5s'], {cwd: root, env})).toMatchObject({status: 2, stderr: 'error: "timeout" is not a router setting; give request-timeout or idle-timeout\n'})
    expect(runBin(['router', 'set', 'request-timeout=default', 'idle-timeout=default'], {cwd: root, env}).status).toBe(0)
    expect(JSON.parse(runBin(['router', '--json'], {cwd: root, env}).stdout)).toEqual([{host: 'vps1', app: 'shop', maintenance: false, request_timeout_seconds: 30, idle_timeout_seconds: 55, domains: [], every_host: true}])
    expect(await get(port, '/slow?ms=2500')).toMatchObject({status: 200})
  }, 120_000)

  it('dev run --host: exit status, stdin, a terminal of the right size, and detached runs in the logs', async () => {
    const {env, root} = await deployedApp(1)
    expect(runBin(['run', '--host', 'vps1', 'exit 7'], {cwd: root, env}).status).toBe(7)
    const piped = spawnBin(['run', '--host', 'vps1', 'sh', '-c', 'tr a-z A-Z; echo "$DYNO $DEV_RELEASE" >&2'], {cwd: root, env, stdin: 'shout\n'})
    expect(await piped.status).toBe(0)
    expect(piped.stdout()).toBe('SHOUT\n')
    expect(piped.stderr()).toBe('run.1 v1\n')

    // With a terminal (util-linux script gives dev one), the run gets a terminal of the same size.
    const inTerminal = await new Promise<{status: number | null; output: string}>((resolve) => {
      const command = `stty rows 33 cols 101; node ${projectRoot}bin/run.js run --host vps1 'stty size; [ -t 0 ] && echo on-a-tty; exit 3'`
      const child = spawn('script', ['-qec', command, '/dev/null'], {cwd: root, env: {...process.env, ...env, NO_COLOR: '1'}, stdio: ['pipe', 'pipe', 'pipe']})
      let output = ''
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
      child.once('close', (status) => resolve({status, output}))
    })
    expect(inTerminal.output).toMatch(/33 101\r+\n/)
    expect(inTerminal.output).toMatch(/on-a-tty\r+\n/)
    expect(inTerminal.status).toBe(3)

    const detached = runBin(['run', '--host', 'vps1', '--detached', 'echo detached-$DYNO'], {cwd: root, env})
    expect(detached).toMatchObject({status: 0, stdout: 'Running `echo detached-$DYNO` on shop as run.1, detached: dev logs --host vps1 --ps run.1 --tail\n'})
    const logged = await eventually(async () => runBin(['logs', '--ps', 'run.1'], {cwd: root, env}).stdout, (text) => /app\[run\.1\]: detached-run\.1\n/.test(text))
    expect(logged).toMatch(/app\[run\.1\]: detached-run\.1\n/)
  }, 90_000)

  it('several hosts in parallel, each line prefixed; apps and apps destroy; config pull and push with .env', async () => {
    const {env, root} = await deployedApp(2)
    const scaled = runBin(['scale', 'web=2'], {cwd: root, env})
    expect(scaled.stdout).toBe('vps1: Scaled shop: now running web at 2, worker at 0\nvps2: Scaled shop: now running web at 2, worker at 0\n')
    // The hosts' lines as one stream, in time order.
    const merged = runBin(['logs', '-n', '20'], {cwd: root, env}).stdout.trim().split('\n')
    const times = merged.map((line) => line.replace(/^vps\d: /, '').split(' ')[0]!)
    expect(times).toEqual([...times].sort())
    expect(new Set(merged.map((line) => line.slice(0, 4)))).toEqual(new Set(['vps1', 'vps2']))
    const restarted = runBin(['restart'], {cwd: root, env})
    expect(restarted).toMatchObject({status: 0, stdout: 'vps1: Restarted web.1, web.2\nvps2: Restarted web.1, web.2\n'})

    await writeFile(join(root, '.env'), '# local settings\nGREETING=local\nexport LOCAL_ONLY="yes"\n')
    const push = runBin(['config', 'push'], {cwd: root, env})
    expect(push).toMatchObject({status: 0, stdout: 'vps1: Set GREETING, LOCAL_ONLY on shop: release v2 (dynos replaced)\nvps2: Set GREETING, LOCAL_ONLY on shop: release v2 (dynos replaced)\n'})
    expect(runBin(['config', 'set', 'GREETING=remote', 'DATABASE_URL=postgres://db/shop?ssl=true'], {cwd: root, env}).status).toBe(0)
    // Without a terminal to ask on, a differing value is kept unless --overwrite.
    const pull = runBin(['config', 'pull'], {cwd: root, env})
    expect(pull).toMatchObject({status: 0, stdout: 'Wrote .env: 1 added, 0 replaced, 1 kept as they were (GREETING; --overwrite replaces them)\n'})
    expect(await readFile(join(root, '.env'), 'utf8')).toBe('# local settings\nGREETING=local\nexport LOCAL_ONLY="yes"\nDATABASE_URL=\'postgres://db/shop?ssl=true\'\n')
    expect(runBin(['config', 'pull', '--overwrite'], {cwd: root, env}).stdout).toBe('Wrote .env: 0 added, 1 replaced\n')
    expect(await readFile(join(root, '.env'), 'utf8')).toBe('# local settings\nGREETING=remote\nexport LOCAL_ONLY="yes"\nDATABASE_URL=\'postgres://db/shop?ssl=true\'\n')
    expect(runBin(['config', 'push'], {cwd: root, env}).stdout).toBe('vps1: shop already has these values; nothing changed\nvps2: shop already has these values; nothing changed\n')

    expect(JSON.parse(runBin(['apps', '--json'], {cwd: root, env}).stdout)).toEqual([
      {host: 'vps1', apps: [{name: 'shop', disk_bytes: expect.any(Number)}]},
      {host: 'vps2', apps: [{name: 'shop', disk_bytes: expect.any(Number)}]},
    ])
    expect(runBin(['apps', 'destroy', 'shop'], {cwd: root, env})).toMatchObject({status: 2, stderr: 'error: confirm with --confirm shop\n'})
    expect(runBin(['apps', 'destroy', 'shop', '--confirm', 'shop', '--host', 'vps2'], {cwd: root, env})).toMatchObject({status: 0, stdout: 'Destroyed shop\n'})
    expect(runBin(['apps'], {cwd: root, env}).stdout).toMatch(/^vps1: shop\t.*\nvps2: no apps\n$/)
    const gone = runBin(['ps'], {cwd: root, env})
    expect(gone.status).toBe(1)
    expect(gone.stdout).toMatch(/^vps1: === web \(2\)/)
    expect(gone.stderr).toBe('error: vps2: there is no app shop here; deploy it first (dev deploy), or name another with --app\nerror: 1 of 2 hosts failed (above)\n')
  }, 120_000)

  it('with no host and no dev start running, says how to give a target', async () => {
    const root = await tempApp({Procfile: 'web: node server.js\n'})
    const ps = runBin(['ps'], {cwd: root, env: {DEV_HOST: ''}})
    expect(ps).toMatchObject({status: 1, stderr: `error: no host named and no \`dev start\` running in ${root}: pass --host HOST (or set DEV_HOST, or list hosts in dev.json), or run \`dev start\` there first\n`})
    expect(runBin(['config'], {cwd: root, env: {DEV_HOST: ''}})).toMatchObject({status: 1, stderr: 'error: no host to work on: pass --host HOST, set DEV_HOST=host1,host2, or list them in dev.json ({"hosts": ["vps1"]})\n'})
  })
})
