#!/usr/bin/env node
// Compares the host agent's HTTP router with nginx (Debian) in one run on this machine, with wrk
// (Debian) as the client, over the same two web dynos of a trivial Node app run by the agent:
//   direct   wrk → one dyno
//   dev      wrk → the agent's router → 2 dynos (least outstanding; a log line per request)
//   nginx    wrk → nginx (1 worker, upstream keepalive, access log on) → the same 2 dynos
//   bare     wrk → a bare Node proxy (bench/lib/bare-proxy.mjs: raw sockets, none of the router's
//            work) → the same 2 dynos: the floor for any proxy written in Node on this machine
//   bare-http  the same with Node's HTTP server on the client side: what a proxy built on
//            node:http pays before any work of its own (the router reads raw sockets instead)
// Reports requests/s, p99 latency and the proxy's CPU time per request (from /proc) of each, and
// the ratios the router is held to: at least 0.5 × nginx's requests/s, and under 2 ms of p99 added
// to the direct run (the median, over the runs, of each run's p99 minus that of the direct run just
// before it). Then, as a second view, an open-loop client (bench/lib/fixed-rate.mjs) sends a fixed
// --rate of requests/s (default 5,000: a load all three carry) on the same 32 connections, to show
// the latency each adds per request apart from the queueing a saturating closed-loop client
// measures; the 2 ms target is checked there too. Last, wrk posts a small JSON body at the router
// and at nginx (the upload path), for requests/s and CPU per request.
// Usage: node bench/router.mjs [--connections N] [--seconds N] [--runs N] [--rate N] [--only direct,dev,nginx,bare,bare-http] [--json FILE]
//   [--agent-node-args "--cpu-prof --cpu-prof-dir=DIR"]  Node options for the agent (to profile the router)
//   --json FILE  also write the key figures (ratios against targets) as JSON, for bench/all.mjs
// Needs: `npm ci && npm run build`, `apt-get install -y wrk nginx`.
import {execFileSync, spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {request} from 'node:http'
import {createServer} from 'node:net'
import {cpus, tmpdir, totalmem} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {fixedRate} from './lib/fixed-rate.mjs'
import {figure, round, skip, writeFigures} from './lib/report.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const args = process.argv.slice(2)
const option = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback)
const CONNECTIONS = option('--connections', 32)
const SECONDS = option('--seconds', 10)
const RUNS = option('--runs', 5)
const RATE = option('--rate', 5000)
// --only dev,nginx: run just these targets (the ratios need them all).

for (const [path, hint] of [
  ['/usr/bin/wrk', 'apt-get install -y wrk'],
  ['/usr/sbin/nginx', 'apt-get install -y nginx'],
  [join(root, 'dist/agent.cjs'), 'npm run build'],
]) {
  if (!existsSync(path)) skip('router', `missing ${path}: run "${hint}" first`)
}

const {buildSlug} = await import(join(root, 'dist/slug/slug-build.js'))
const work = mkdtempSync(join(tmpdir(), 'dev-bench-router-'))

function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const {port} = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** The app: a web process that answers "ok" and logs nothing, as small as a backend gets. */
const appDir = join(work, 'app')
mkdirSync(appDir)
writeFileSync(join(appDir, 'Procfile'), 'web: node server.js\n')
writeFileSync(join(appDir, 'server.js'), "require('node:http').createServer((req, res) => res.end('ok\\n')).listen(Number(process.env.PORT))\n")
const {sha256} = await buildSlug({root: appDir, secrets: []})
const slugPath = join(appDir, '.dev/slugs', `${sha256}.tgz`)

const home = join(work, 'agent-home')
mkdirSync(home, {mode: 0o700})
const routerPort = await freePort()
writeFileSync(join(home, 'agent.json'), JSON.stringify({router_port: routerPort, router_host: '127.0.0.1', dyno_port_range: [41000, 41099]}))
const agentNodeArgs = args.includes('--agent-node-args') ? args[args.indexOf('--agent-node-args') + 1].split(' ').filter(Boolean) : []
const agent = spawn(process.execPath, [...agentNodeArgs, join(root, 'dist/agent.cjs'), 'daemon'], {env: {...process.env, DEV_AGENT_HOME: home}, stdio: ['ignore', 'ignore', 'pipe']})
await new Promise((resolve, reject) => {
  let text = ''
  agent.stderr.on('data', (chunk) => {
    text += chunk
    if (text.includes('listening')) resolve()
  })
  agent.once('exit', (code) => reject(new Error(`the agent exited (${code}): ${text}`)))
})

function api(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = request({socketPath: join(home, 'agent.sock'), method, path, headers: {'content-type': 'application/json', 'dev-user': 'bench'}}, (res) => {
      let text = ''
      res.on('data', (chunk) => (text += chunk))
      res.on('end', () => resolve({status: res.statusCode, json: text ? JSON.parse(text) : undefined}))
    })
    req.on('error', reject)
    req.end(body === undefined ? undefined : Buffer.isBuffer(body) ? body : JSON.stringify(body))
  })
}

await api('POST', '/apps', {name: 'bench'})
await api('PUT', `/slugs/${sha256}`, readFileSync(slugPath))
const released = await api('POST', '/apps/bench/releases', {slug: sha256})
if (released.status !== 201) throw new Error(`deploy failed: ${JSON.stringify(released.json)}`)
await api('PATCH', '/apps/bench/formation', {updates: [{type: 'web', quantity: 2}]})
let dynos = []
for (let tries = 0; tries < 100; tries++) {
  dynos = (await api('GET', '/apps/bench/dynos')).json
  if (dynos.length === 2 && dynos.every((dyno) => dyno.state === 'up')) break
  await new Promise((resolve) => setTimeout(resolve, 100))
}
const [p1, p2] = dynos.map((dyno) => dyno.port)

const nginxPort = await freePort()
const nginxDir = join(work, 'nginx')
mkdirSync(nginxDir)
writeFileSync(
  join(nginxDir, 'nginx.conf'),
  `worker_processes 1;
daemon off;
pid ${nginxDir}/nginx.pid;
error_log ${nginxDir}/error.log;
events { worker_connections 4096; }
http {
  access_log ${nginxDir}/access.log;
  client_body_temp_path ${nginxDir}/body;
  proxy_temp_path ${nginxDir}/proxy;
  fastcgi_temp_path ${nginxDir}/fastcgi;
  uwsgi_temp_path ${nginxDir}/uwsgi;
  scgi_temp_path ${nginxDir}/scgi;
  upstream dynos { least_conn; server 127.0.0.1:${p1}; server 127.0.0.1:${p2}; keepalive 64; }
  server {
    listen 127.0.0.1:${nginxPort};
    location / {
      proxy_pass http://dynos;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
  }
}
`,
)
const nginx = spawn('/usr/sbin/nginx', ['-c', join(nginxDir, 'nginx.conf'), '-e', join(nginxDir, 'error.log')], {stdio: 'ignore'})
for (let tries = 0; tries < 50; tries++) {
  const up = await fetch(`http://127.0.0.1:${nginxPort}/`).then((res) => res.ok, () => false)
  if (up) break
  await new Promise((resolve) => setTimeout(resolve, 100))
}

/** A floor proxy (bench/lib/bare-proxy.mjs) in front of the same dynos, once it listens. */
async function bareProxy(...options) {
  const port = await freePort()
  const child = spawn(process.execPath, [join(root, 'bench/lib/bare-proxy.mjs'), String(port), String(p1), String(p2), ...options], {stdio: ['ignore', 'pipe', 'inherit']})
  await new Promise((resolve, reject) => {
    child.stdout.once('data', resolve)
    child.once('exit', (code) => reject(new Error(`the bare proxy exited (${code})`)))
  })
  return {port, child}
}
const bare = await bareProxy()
const bareHttp = await bareProxy('--node-http')

const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], {encoding: 'utf8'}))

/** The CPU time (µs, user and system, all threads) a process has used so far, from /proc. */
function cpuMicros(pid) {
  // Fields after the command's closing parenthesis: state is the first, utime the 12th, stime the 13th.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').at(-1).split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / TICKS_PER_SECOND
}

/** The nginx worker: the master's one child. */
function childOf(parent) {
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ').at(-1).split(' ')[1] === String(parent)) return Number(entry)
    } catch {
      // Gone meanwhile.
    }
  }
  throw new Error(`no child of process ${parent}`)
}

/** One wrk run: requests/s, p99 in ms, and the proxy's CPU time per request (µs) when its process is given. */
/** A wrk script that posts a small JSON body, as a form or API client does: the upload path. */
const postScript = join(work, 'post.lua')
writeFileSync(postScript, `wrk.method = "POST"\nwrk.body = '{"name":"widget","quantity":3,"note":"a small JSON body like a form post"}'\nwrk.headers["Content-Type"] = "application/json"\n`)

function wrk(port, pid, script) {
  const before = pid === undefined ? 0 : cpuMicros(pid)
  const out = execFileSync('/usr/bin/wrk', ['-t2', `-c${CONNECTIONS}`, `-d${SECONDS}s`, '--latency', ...(script === undefined ? [] : ['-s', script]), `http://127.0.0.1:${port}/`], {encoding: 'utf8'})
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1])
  const [, value, unit] = /\s99%\s+([\d.]+)(us|ms|s)/.exec(out)
  const p99 = Number(value) * (unit === 'us' ? 0.001 : unit === 's' ? 1000 : 1)
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out)?.[0] ?? ''
  const requests = Number(/(\d+) requests in/.exec(out)[1])
  return {rps, p99, errors, cpuPerRequest: pid === undefined ? undefined : (cpuMicros(pid) - before) / requests}
}

const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : undefined
const targets = Object.fromEntries(Object.entries({direct: p1, dev: routerPort, nginx: nginxPort, bare: bare.port, 'bare-http': bareHttp.port}).filter(([name]) => only === undefined || only.includes(name)))
const results = Object.fromEntries(Object.keys(targets).map((name) => [name, []]))
const atRate = Object.fromEntries(Object.keys(targets).map((name) => [name, []]))
/** POST runs: the router and nginx only (3 at most, alternating). */
const posted = Object.fromEntries(['dev', 'nginx'].filter((name) => targets[name] !== undefined).map((name) => [name, []]))
try {
  // Warm up each (JIT, connection pools), then alternate runs so drift hits all alike.
  for (const port of Object.values(targets)) execFileSync('/usr/bin/wrk', ['-t2', `-c${CONNECTIONS}`, '-d2s', `http://127.0.0.1:${port}/`])
  // The proxies' processes, whose CPU time each run measures: the agent (the router is in it) and nginx's worker.
  const proxyPid = {dev: agent.pid, nginx: childOf(nginx.pid), bare: bare.child.pid, 'bare-http': bareHttp.child.pid}
  for (let run = 0; run < RUNS; run++) for (const [name, port] of Object.entries(targets)) results[name].push(wrk(port, proxyPid[name]))
  // The fixed-rate view: a warm-up at the rate, then alternating runs (3 at most, of --seconds).
  for (const port of Object.values(targets)) await fixedRate({port, rate: RATE, seconds: Math.min(2, SECONDS)})
  for (let run = 0; run < Math.min(RUNS, 3); run++) for (const [name, port] of Object.entries(targets)) atRate[name].push(await fixedRate({port, rate: RATE, seconds: SECONDS}))
  for (let run = 0; run < Math.min(RUNS, 3); run++) for (const name of Object.keys(posted)) posted[name].push(wrk(targets[name], proxyPid[name], postScript))
} finally {
  nginx.kill('SIGTERM')
  bare.child.kill('SIGTERM')
  bareHttp.child.kill('SIGTERM')
  agent.kill('SIGTERM')
  // The agent's home holds up to 50 MiB of router log lines by now: gone once the agent is.
  if (agent.exitCode === null && agent.signalCode === null) await new Promise((resolve) => agent.once('exit', resolve))
  rmSync(work, {recursive: true, force: true, maxRetries: 5})
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
const summary = Object.fromEntries(Object.entries(results).map(([name, runs]) => [name, {rps: median(runs.map((r) => r.rps)), p99: median(runs.map((r) => r.p99)), cpu: runs[0].cpuPerRequest === undefined ? undefined : median(runs.map((r) => r.cpuPerRequest)), errors: runs.map((r) => r.errors).filter(Boolean)}]))
console.log(`machine: ${cpus().length} × ${cpus()[0].model}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; wrk -t2 -c${CONNECTIONS} -d${SECONDS}s, median of ${RUNS} runs`)
console.log('| target | requests/s | p99 latency | proxy CPU per request | errors |')
console.log('|---|---|---|---|---|')
for (const [name, result] of Object.entries(summary)) console.log(`| ${name} | ${Math.round(result.rps)} | ${result.p99.toFixed(2)} ms | ${result.cpu === undefined ? '—' : `${result.cpu.toFixed(1)} µs`} | ${result.errors.join('; ') || 'none'} |`)
// --json FILE: the raw numbers of every target run, then (with all three) the ratios held to targets.
const anchorNginx = (spawnSync('/usr/sbin/nginx', ['-v'], {encoding: 'utf8'}).stderr.trim().replace(/^nginx version: nginx\//, 'nginx ') || 'nginx') + ' → 2 dynos'
const label = {direct: 'one dyno directly', dev: 'dev router → 2 dynos', nginx: 'nginx → 2 dynos', bare: 'bare Node proxy → 2 dynos', 'bare-http': 'bare node:http proxy → 2 dynos'}
// The fixed-rate view: medians over its runs, and each run's p99 less the direct run's before it.
const rated = Object.fromEntries(Object.entries(atRate).map(([name, runs]) => [name, {p50: median(runs.map((r) => r.p50)), p99: median(runs.map((r) => r.p99)), p999: median(runs.map((r) => r.p999)), failed: runs.reduce((sum, r) => sum + r.failed, 0)}]))
console.log(`\nat a fixed ${RATE} requests/s (open loop, ${CONNECTIONS} connections, ${SECONDS} s, median of ${Math.min(RUNS, 3)} runs)`)
console.log('| target | p50 | p99 | p99.9 | failed |')
console.log('|---|---|---|---|---|')
for (const [name, result] of Object.entries(rated)) console.log(`| ${name} | ${result.p50.toFixed(2)} ms | ${result.p99.toFixed(2)} ms | ${result.p999.toFixed(2)} ms | ${result.failed} |`)
const ratedAdded = (name) => median(atRate[name].map((run, i) => run.p99 - atRate.direct[i].p99))
if (atRate.direct !== undefined) for (const name of ['dev', 'nginx', 'bare', 'bare-http'].filter((name) => atRate[name] !== undefined)) console.log(`p99 added at ${RATE} requests/s by ${name}: ${ratedAdded(name).toFixed(2)} ms`)
// The POST view: medians of its runs, printed and kept as raw figures.
const postSummary = Object.fromEntries(Object.entries(posted).map(([name, runs]) => [name, {rps: median(runs.map((r) => r.rps)), p99: median(runs.map((r) => r.p99)), cpu: median(runs.map((r) => r.cpuPerRequest)), errors: runs.map((r) => r.errors).filter(Boolean)}]))
console.log(`\nPOST of a 75-byte JSON body (wrk -s, ${CONNECTIONS} connections, ${SECONDS} s, median of ${Math.min(RUNS, 3)} runs)`)
console.log('| target | requests/s | p99 latency | proxy CPU per request | errors |')
console.log('|---|---|---|---|---|')
for (const [name, result] of Object.entries(postSummary)) console.log(`| ${name} | ${Math.round(result.rps)} | ${result.p99.toFixed(2)} ms | ${result.cpu.toFixed(1)} µs | ${result.errors.join('; ') || 'none'} |`)
const postRaws = Object.entries(postSummary).flatMap(([name, result]) => [
  figure(`POST requests/s, ${label[name]}`, Math.round(result.rps), 'req/s', `wrk -c${CONNECTIONS}, 75-byte JSON body`),
  figure(`proxy CPU per POST, ${label[name]}`, round(result.cpu), 'µs', `wrk -c${CONNECTIONS}, user + system`),
])
const raws = Object.entries(summary).flatMap(([name, result]) => [
  figure(`requests/s, ${label[name]}`, Math.round(result.rps), 'req/s', `wrk -c${CONNECTIONS}`),
  figure(`p99 latency, ${label[name]}`, round(result.p99), 'ms', `wrk -c${CONNECTIONS}`),
  ...(result.cpu === undefined ? [] : [figure(`proxy CPU per request, ${label[name]}`, round(result.cpu), 'µs', `wrk -c${CONNECTIONS}, user + system`)]),
  figure(`p99 latency at ${RATE} req/s, ${label[name]}`, round(rated[name].p99), 'ms', `open loop, ${RATE} req/s`),
]).concat(postRaws)
const errorRuns = [...Object.values(summary), ...Object.values(postSummary)].reduce((sum, result) => sum + result.errors.length, 0)
if (only !== undefined) {
  writeFigures('router', raws)
  process.exit(0)
}
console.log(`dev router / nginx requests/s: ${(summary.dev.rps / summary.nginx.rps).toFixed(2)} (target ≥ 0.5); CPU per request: ${(summary.dev.cpu / summary.nginx.cpu).toFixed(2)}× nginx's`)
// p99 added: the median of each run's difference with the direct run right before it (the runs
// alternate), so drift in the dyno's own p99 between runs does not count as the router's.
const perRun = (name) => results[name].map((run, i) => run.p99 - results.direct[i].p99)
const added = (name) => median(perRun(name))
const addedP99 = added('dev')
const listed = (name) => perRun(name).map((ms) => ms.toFixed(2)).join(', ')
console.log(`p99 added by the dev router: ${addedP99.toFixed(2)} ms (target < 2 ms; per run ${listed('dev')}); by nginx: ${added('nginx').toFixed(2)} ms (per run ${listed('nginx')}); by the bare Node proxy: ${added('bare').toFixed(2)} ms (per run ${listed('bare')}); by the bare node:http proxy: ${added('bare-http').toFixed(2)} ms (per run ${listed('bare-http')})`)

const rpsRatio = summary.dev.rps / summary.nginx.rps
writeFigures('router', [
  figure('router requests/s vs nginx', round(rpsRatio), '×', anchorNginx, '≥ 0.5×', rpsRatio >= 0.5),
  figure('router POST requests/s vs nginx', round(postSummary.dev.rps / postSummary.nginx.rps), '×', anchorNginx),
  figure(`p99 added by the router at ${CONNECTIONS} connections`, round(addedP99), 'ms', 'one dyno directly', '< 2 ms', addedP99 < 2),
  figure(`p99 added by nginx at ${CONNECTIONS} connections`, round(added('nginx')), 'ms', 'one dyno directly'),
  // The floor: what a Node proxy doing nothing but pass bytes adds here (bench/lib/bare-proxy.mjs).
  figure(`p99 added by a bare Node proxy at ${CONNECTIONS} connections`, round(added('bare')), 'ms', 'one dyno directly'),
  figure(`p99 added by a bare node:http proxy at ${CONNECTIONS} connections`, round(added('bare-http')), 'ms', 'one dyno directly'),
  // The same target at a fixed rate, where the p99 is the proxy's own rather than wrk's queue (see docs/benchmarks.md).
  figure(`p99 added by the router at a fixed ${RATE} req/s`, round(ratedAdded('dev')), 'ms', 'one dyno directly', '< 2 ms', ratedAdded('dev') < 2),
  figure(`p99 added by nginx at a fixed ${RATE} req/s`, round(ratedAdded('nginx')), 'ms', 'one dyno directly'),
  figure(`p99 added by a bare Node proxy at a fixed ${RATE} req/s`, round(ratedAdded('bare')), 'ms', 'one dyno directly'),
  figure(`p99 added by a bare node:http proxy at a fixed ${RATE} req/s`, round(ratedAdded('bare-http')), 'ms', 'one dyno directly'),
  figure('router CPU per request vs nginx', round(summary.dev.cpu / summary.nginx.cpu), '×', anchorNginx),
  figure('router CPU per request vs a bare Node proxy', round(summary.dev.cpu / summary.bare.cpu), '×', 'bare-proxy.mjs → 2 dynos'),
  figure('router CPU per request vs a bare node:http proxy', round(summary.dev.cpu / summary['bare-http'].cpu), '×', 'bare-proxy.mjs --node-http → 2 dynos'),
  ...raws,
  figure('runs with errors (any target)', errorRuns, 'runs', `${RUNS} run(s) per target, and the POST runs`),
])
