#!/usr/bin/env node
// Times `dev deploy` of fixtures/agent-app to one and to two hosts: real OpenSSH sshd processes on
// 127.0.0.1 (each its own host key and agent home), set up with `dev hosts setup` first (not timed):
//   first      the first deploy (source upload, build on the first host, copy, release phase, switch)
//   no-op      the same tree again (nothing uploaded, built or released)
//   one file   one file changed (upload, build, copy and release again)
// Target: a no-op redeploy under 3 s. No other deploy tool runs here, so the anchor is the target.
// Usage: node bench/deploy.mjs [--runs N] [--json FILE]     Needs: npm ci && npm run build; openssh-server.
//   --json FILE  also write the key figures (times against the target) as JSON, for bench/all.mjs
import {execFileSync, spawn, spawnSync} from 'node:child_process'
import {cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {cpus, tmpdir, totalmem} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {figure, round, skip, writeFigures} from './lib/report.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const args = process.argv.slice(2)
const RUNS = args.includes('--runs') ? Number(args[args.indexOf('--runs') + 1]) : 3
for (const [path, hint] of [
  ['/usr/sbin/sshd', 'apt-get install -y openssh-server'],
  [join(root, 'dist/agent.cjs'), 'npm run build'],
]) {
  if (!existsSync(path)) skip('deploy', `missing ${path}: run "${hint}" first`)
}

const work = mkdtempSync(join(tmpdir(), 'dev-bench-deploy-'))
const freePort = () =>
  new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const {port} = server.address()
      server.close(() => resolve(port))
    })
  })

/** Starts `count` sshd hosts named vps1…; returns the env that points dev at them, and a stop function. */
async function sshHosts(dir, count) {
  mkdirSync(dir, {recursive: true, mode: 0o700})
  const key = join(dir, 'id_ed25519')
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key])
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${key}.pub`))
  mkdirSync('/run/sshd', {recursive: true})
  const daemons = []
  let config = ''
  let known = ''
  const hosts = []
  for (let index = 1; index <= count; index++) {
    const hostDir = join(dir, `vps${index}`)
    mkdirSync(hostDir)
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(hostDir, 'host_key')])
    const port = await freePort()
    const home = join(hostDir, 'agent-home')
    mkdirSync(home, {mode: 0o700})
    writeFileSync(join(home, 'agent.json'), JSON.stringify({dyno_port_range: [32000 + index * 100, 32099 + index * 100], router_host: '127.0.0.1'}))
    writeFileSync(
      join(hostDir, 'sshd_config'),
      [`Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${join(hostDir, 'host_key')}`, `PidFile ${join(hostDir, 'sshd.pid')}`, `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`, 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'PermitRootLogin prohibit-password', 'StrictModes no', 'UsePAM no', `SetEnv DEV_AGENT_HOME=${home}`, 'LogLevel ERROR', ''].join('\n'),
    )
    daemons.push(spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(hostDir, 'sshd_config')], {stdio: 'ignore'}))
    known += `[127.0.0.1]:${port} ${readFileSync(join(hostDir, 'host_key.pub'), 'utf8').split(' ').slice(0, 2).join(' ')}\n`
    config += `Host vps${index}\n  HostName 127.0.0.1\n  Port ${port}\n  User ${process.env.USER ?? 'root'}\n  IdentityFile ${key}\n  IdentitiesOnly yes\n  UserKnownHostsFile ${join(dir, 'known_hosts')}\n`
    hosts.push({name: `vps${index}`, home, routerPort: await freePort()})
  }
  writeFileSync(join(dir, 'known_hosts'), known)
  writeFileSync(join(dir, 'config'), config)
  await new Promise((resolve) => setTimeout(resolve, 300))
  const env = {...process.env, DEV_SSH_CONFIG: join(dir, 'config'), SSH_AUTH_SOCK: '', NO_COLOR: '1'}
  const stop = () => {
    for (const host of hosts) {
      try {
        process.kill(Number(readFileSync(join(host.home, 'agent.pid'), 'utf8')), 'SIGTERM')
      } catch {}
    }
    for (const daemon of daemons) daemon.kill('SIGTERM')
  }
  return {hosts, env, stop}
}

function dev(argv, env, cwd) {
  const started = process.hrtime.bigint()
  const result = spawnSync(process.execPath, [join(root, 'bin/run.js'), ...argv], {env, cwd, encoding: 'utf8'})
  if (result.status !== 0) throw new Error(`dev ${argv.join(' ')} failed:\n${result.stderr}`)
  return Number(process.hrtime.bigint() - started) / 1e6
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
const results = {}
for (const count of [1, 2]) {
  const times = {first: [], 'no-op': [], 'one file': []}
  for (let run = 0; run < RUNS; run++) {
    const {hosts, env, stop} = await sshHosts(join(work, `h${count}-${run}`), count)
    try {
      for (const host of hosts) dev(['hosts', 'setup', host.name, '--router-port', String(host.routerPort)], env)
      const app = join(work, `app${count}-${run}`)
      cpSync(join(root, 'fixtures/agent-app'), app, {recursive: true})
      writeFileSync(join(app, 'dev.json'), JSON.stringify({app: 'shop', hosts: hosts.map((host) => host.name)}))
      times.first.push(dev(['deploy'], env, app))
      times['no-op'].push(dev(['deploy'], env, app))
      writeFileSync(join(app, 'worker.js'), `${readFileSync(join(app, 'worker.js'), 'utf8')}\n// changed\n`)
      times['one file'].push(dev(['deploy'], env, app))
    } finally {
      stop()
    }
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  results[count] = Object.fromEntries(Object.entries(times).map(([name, values]) => [name, median(values)]))
}

rmSync(work, {recursive: true, force: true, maxRetries: 3})

console.log(`machine: ${cpus().length} × ${cpus()[0].model}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; fixtures/agent-app; median of ${RUNS} runs`)
console.log('| deploy | 1 host | 2 hosts |')
console.log('|---|---|---|')
for (const name of ['first', 'no-op', 'one file']) console.log(`| ${name} | ${(results[1][name] / 1000).toFixed(2)} s | ${(results[2][name] / 1000).toFixed(2)} s |`)
const worst = Math.max(results[1]['no-op'], results[2]['no-op'])
console.log(`no-op redeploy: ${(worst / 1000).toFixed(2)} s at most (target < 3 s: ${worst < 3000 ? 'met' : 'NOT met'})`)

const sshVersion = /OpenSSH_[\d.p]+/.exec(spawnSync('ssh', ['-V'], {encoding: 'utf8'}).stderr ?? '')?.[0].replace('_', ' ') ?? 'OpenSSH'
writeFigures('deploy', [
  figure('no-op redeploy, 1 host', round(results[1]['no-op'] / 1000), 's', 'absolute target (no peer tool)', '< 3 s', results[1]['no-op'] < 3000),
  figure('no-op redeploy, 2 hosts', round(results[2]['no-op'] / 1000), 's', 'absolute target (no peer tool)', '< 3 s', results[2]['no-op'] < 3000),
  ...[1, 2].flatMap((count) =>
    ['first', 'one file'].map((name) => figure(`${name === 'first' ? 'first deploy' : 'one-file-change redeploy'}, ${count} host${count === 1 ? '' : 's'}`, round(results[count][name] / 1000), 's', `${sshVersion} sshd on 127.0.0.1`)),
  ),
])
