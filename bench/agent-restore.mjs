#!/usr/bin/env node
// How fast a host agent has its formation back after `kill -9`: the bundled agent on a temporary
// DEV_AGENT_HOME runs fixtures/agent-app at web=4 worker=2; it is killed and started again, and
// the time from the new agent's start until every dyno is `up` again is measured. Two cases: the
// dynos survive (adoption) and the dynos died with it (all restarted). Target: within 5 s.
// Usage: node bench/agent-restore.mjs [--runs N] [--json FILE]   (after npm ci, which builds dev)
//   --json FILE  also write the key figures (times against the target) as JSON, for bench/all.mjs
import {execFileSync, spawn} from 'node:child_process'
import {cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {request} from 'node:http'
import {cpus, tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {figure, round, writeFigures} from './lib/report.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const args = process.argv.slice(2)
const RUNS = args.includes('--runs') ? Number(args[args.indexOf('--runs') + 1]) : 3

const work = mkdtempSync(join(tmpdir(), 'dev-bench-agent-'))
const app = join(work, 'app')
cpSync(join(root, 'fixtures/agent-app'), app, {recursive: true})
execFileSync(join(root, 'bin/run.js'), ['build', '--json'], {cwd: app, stdio: ['ignore', 'ignore', 'inherit']})
const slugFile = readdirSync(join(app, '.dev/slugs')).find((name) => name.endsWith('.tgz'))
const sha256 = slugFile.replace('.tgz', '')
const home = join(work, 'home')

const call = (method, path, body) =>
  new Promise((resolve, reject) => {
    const req = request({socketPath: join(home, 'agent.sock'), method, path, headers: {'content-type': 'application/json'}}, (res) => {
      let text = ''
      res.on('data', (chunk) => (text += chunk))
      res.on('end', () => resolve(text === '' ? undefined : JSON.parse(text)))
    })
    req.on('error', reject)
    req.end(body === undefined ? undefined : Buffer.isBuffer(body) ? body : JSON.stringify(body))
  })

const startAgent = () =>
  new Promise((resolve) => {
    const started = process.hrtime.bigint()
    const child = spawn(process.execPath, [join(root, 'dist/agent.cjs'), 'daemon'], {env: {...process.env, DEV_AGENT_HOME: home}, stdio: ['ignore', 'ignore', 'pipe']})
    child.stderr.on('data', (chunk) => chunk.toString().includes('listening') && resolve({child, started}))
  })

const allUp = async (count) => {
  for (;;) {
    const dynos = await call('GET', '/apps/shop/dynos')
    if (dynos.length === count && dynos.every((dyno) => dyno.state === 'up')) return dynos
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

const ms = (from) => Number(process.hrtime.bigint() - from) / 1e6
const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]

rmSync(home, {recursive: true, force: true})
execFileSync('mkdir', ['-p', home])
writeFileSync(join(home, 'agent.json'), JSON.stringify({dyno_port_range: [27000, 27999], router_port: 0, router_host: '127.0.0.1'}))
let {child} = await startAgent()
await call('POST', '/apps', {name: 'shop'})
await call('PUT', `/slugs/${sha256}`, readFileSync(join(app, '.dev/slugs', slugFile)))
await call('POST', '/apps/shop/releases', {slug: sha256})
await call('PATCH', '/apps/shop/formation', {updates: [{type: 'web', quantity: 4}, {type: 'worker', quantity: 2}]})
let dynos = await allUp(6)

const results = {adopted: [], restarted: []}
for (let run = 0; run < RUNS; run++) {
  for (const kind of ['adopted', 'restarted']) {
    child.kill('SIGKILL')
    await new Promise((resolve) => child.once('exit', resolve))
    if (kind === 'restarted') for (const dyno of dynos) process.kill(-dyno.pid, 'SIGKILL')
    const next = await startAgent()
    child = next.child
    dynos = await allUp(6)
    results[kind].push(ms(next.started))
  }
}
child.kill('SIGTERM')
await new Promise((resolve) => child.once('exit', resolve))
rmSync(work, {recursive: true, force: true})

console.log(`machine: ${cpus().length} × ${cpus()[0].model}, node ${process.version}; formation web=4 worker=2; ${RUNS} runs, median`)
for (const [kind, times] of Object.entries(results)) {
  const value = median(times)
  console.log(`agent start → all 6 dynos up, dynos ${kind === 'adopted' ? 'survived (adopted)' : 'died too (restarted)'}: ${value.toFixed(0)} ms (target 5000 ms: ${value <= 5000 ? 'met' : 'missed'})`)
}

writeFigures('agent', [
  figure('agent kill -9 → web=4 worker=2 up, dynos adopted', round(median(results.adopted) / 1000, 3), 's', 'absolute target (no peer tool)', '≤ 5 s', median(results.adopted) <= 5000),
  figure('agent kill -9 → web=4 worker=2 up, dynos restarted', round(median(results.restarted) / 1000, 3), 's', 'absolute target (no peer tool)', '≤ 5 s', median(results.restarted) <= 5000),
])
