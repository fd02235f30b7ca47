#!/usr/bin/env node
// Compares `dev start` with Foreman (Debian's ruby-foreman) and node-foreman (npm `foreman`, a
// devDependency), and with the raw pipe, in one run on this machine:
//   throughput  2 processes × 200,000 lines of 70 bytes, output to a file: wall time, damaged lines
//   memory      peak RSS of the supervisor process with 20 `sleep` processes
//   start-stop  wall time of a whole run of the Procfile `a: true`
//   stop        time from SIGTERM to exit with 10 processes that exit on SIGTERM, and survivors
// Usage: node bench/local-supervisor.mjs [--lines N] [--runs N] [--json FILE]
//   --json FILE  also write the key figures (ratios against targets) as JSON, for bench/all.mjs
// Needs: `npm ci && npm run build` (dev and node-foreman), `apt-get install ruby-foreman` (Foreman).
import {spawn, execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, readdirSync, writeFileSync, openSync, closeSync, existsSync} from 'node:fs'
import {cpus, tmpdir, totalmem} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {figure, round, skip, writeFigures} from './lib/report.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const args = process.argv.slice(2)
const option = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback)
const LINES = option('--lines', 200_000)
const RUNS = option('--runs', 3)
const WIDTH = 70

const foremanBin = '/usr/bin/foreman'
const nfBin = join(root, 'node_modules/.bin/nf')
const devBin = join(root, 'bin/run.js')
for (const [path, hint] of [
  [foremanBin, 'apt-get install -y ruby-foreman'],
  [nfBin, 'npm ci'],
  [join(root, 'dist/commands/start.js'), 'npm run build'],
]) {
  if (!existsSync(path)) skip('supervisor', `missing ${path}: run "${hint}" first`)
}

/** How each supervisor is started on a Procfile in `dir`, with a formation like "s=20". */
const TOOLS = {
  dev: (dir, formation) => [process.execPath, [devBin, 'start', '-d', dir, '-t', '60', ...(formation ? ['-m', formation] : [])]],
  foreman: (dir, formation) => [foremanBin, ['start', '-d', dir, '-f', join(dir, 'Procfile'), '-t', '60', ...(formation ? ['-m', formation] : [])]],
  'node-foreman': (dir, formation) => [nfBin, ['start', '-j', join(dir, 'Procfile'), ...(formation ? [formation] : [])]],
}

function app(procfile, files = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'dev-bench-'))
  writeFileSync(join(dir, 'Procfile'), procfile)
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return dir
}

/** Runs a supervisor with stdout and stderr to `outFile`; resolves to {ms, pid, exit}. */
function launch(tool, dir, formation, outFile, onStart) {
  const [command, argv] = TOOLS[tool](dir, formation)
  const fd = openSync(outFile, 'w')
  const started = process.hrtime.bigint()
  const child = spawn(command, argv, {cwd: dir, stdio: ['ignore', fd, fd], env: {...process.env, NO_COLOR: '1', FORCE_COLOR: '0'}})
  closeSync(fd)
  onStart?.(child)
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ms: Number(process.hrtime.bigint() - started) / 1e6, pid: child.pid, exit: code ?? signal}))
  })
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Command line of a live process, or undefined. */
function cmdline(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ')
  } catch {
    return undefined
  }
}

/** Pids of the live descendants of `pid` whose command line is exactly `command`. Used instead of
 * matching process names machine-wide, so nothing but this run's own processes is counted or killed. */
function descendants(pid, command) {
  const children = new Map()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (!children.has(ppid)) children.set(ppid, [])
      children.get(ppid).push(Number(entry))
    } catch {}
  }
  const found = []
  const queue = [pid]
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()) ?? []) {
      queue.push(child)
      if (cmdline(child) === command) found.push(child)
    }
  }
  return found
}

/** Of `pids`, those still running `command`. */
const alive = (pids, command) => pids.filter((pid) => cmdline(pid) === command)
const killAll = (pids, command) => {
  for (const pid of alive(pids, command)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
}

// ---- throughput ------------------------------------------------------------------------------
// Each generator ignores SIGTERM until it has written everything, so every supervisor, whatever
// it does when the first one exits, relays all lines and then ends by itself.
const GENERATOR = `
$SIG{TERM} = 'IGNORE';
$| = 1;
my ($name, $count, $width) = @ARGV;
my $out = '';
for my $i (0 .. $count - 1) {
  my $head = "$name $i ";
  $out .= $head . ('y' x ($width - length($head))) . "\\n";
  # Whole lines, in writes under PIPE_BUF (4096 bytes), so even a bare shared pipe keeps lines whole.
  if (length($out) > 4000) { print $out; $out = ''; }
}
print $out;
`

/** Lines that arrived whole: the exact text of generator line (name, index), each counted once. */
function countIntact(file) {
  const text = readFileSync(file, 'latin1').replace(/\u001B\[[0-9;]*m/g, '')
  const seen = new Set()
  for (const line of text.split('\n')) {
    const match = /(?:^|\| *)([ab]) (\d+) (y+)$/.exec(line)
    if (!match) continue
    const [, name, index, tail] = match
    if (tail.length === WIDTH - `${name} ${index} `.length && Number(index) < LINES) seen.add(`${name}${index}`)
  }
  return {intact: seen.size, damaged: 2 * LINES - seen.size}
}

async function throughput() {
  const dir = app(`a: perl gen.pl a ${LINES} ${WIDTH}\nb: perl gen.pl b ${LINES} ${WIDTH}\n`, {'gen.pl': GENERATOR})
  const results = {}
  const out = join(dir, 'out.log')
  // The physical limit: both generators straight into one pipe, copied to the file by cat.
  const raw = []
  for (let run = 0; run < RUNS; run++) {
    const started = process.hrtime.bigint()
    execFileSync('sh', ['-c', `(perl gen.pl a ${LINES} ${WIDTH} & perl gen.pl b ${LINES} ${WIDTH}; wait) | cat > ${out}`], {cwd: dir})
    raw.push(Number(process.hrtime.bigint() - started) / 1e6)
  }
  results['raw pipe (cat)'] = {ms: median(raw), ...countIntact(out)}
  for (const tool of Object.keys(TOOLS)) {
    const times = []
    let check
    for (let run = 0; run < RUNS; run++) {
      const {ms} = await launch(tool, dir, undefined, out)
      times.push(ms)
      check = countIntact(out)
    }
    results[tool] = {ms: median(times), ...check}
  }
  return results
}

// ---- memory -----------------------------------------------------------------------------------
function peakRssKb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)[1])
}

async function memory() {
  const dir = app('s: sleep 600\n')
  const results = {}
  for (const tool of Object.keys(TOOLS)) {
    let child
    const done = launch(tool, dir, 's=20', join(dir, 'out.log'), (spawned) => (child = spawned))
    await sleep(2500)
    results[tool] = {kb: peakRssKb(child.pid)}
    const sleeps = descendants(child.pid, 'sleep 600')
    child.kill('SIGTERM')
    await done
    await sleep(200)
    killAll(sleeps, 'sleep 600')
  }
  return results
}

/** Peak RSS of a bare node, and of a node that only loads oclif's runner. */
async function frameworkFloor() {
  const peak = async (code) => {
    const child = spawn(process.execPath, ['-e', `${code}; setTimeout(() => {}, 1500)`], {cwd: root, stdio: 'ignore'})
    await sleep(1000)
    const kb = peakRssKb(child.pid)
    child.kill()
    return kb
  }
  return {node: await peak('0'), oclif: await peak("import('@oclif/core/run')")}
}

// ---- start-stop -------------------------------------------------------------------------------
async function startStop() {
  const dir = app('a: true\n')
  const results = {}
  for (const tool of Object.keys(TOOLS)) {
    const times = []
    for (let run = 0; run < 5; run++) times.push((await launch(tool, dir, undefined, join(dir, 'out.log'))).ms)
    results[tool] = {ms: median(times)}
  }
  return results
}

// ---- stop after SIGTERM -----------------------------------------------------------------------
async function stopTime() {
  const dir = app('s: sleep 601\n')
  const results = {}
  for (const tool of Object.keys(TOOLS)) {
    const times = []
    let survivors = 0
    for (let run = 0; run < 3; run++) {
      let child
      const done = launch(tool, dir, 's=10', join(dir, 'out.log'), (spawned) => (child = spawned))
      let sleeps = []
      for (let tries = 0; tries < 100; tries++) {
        await sleep(50)
        sleeps = descendants(child.pid, 'sleep 601')
        if (sleeps.length >= 10) break
      }
      await sleep(300)
      sleeps = descendants(child.pid, 'sleep 601')
      const sent = process.hrtime.bigint()
      child.kill('SIGTERM')
      await done
      times.push(Number(process.hrtime.bigint() - sent) / 1e6)
      await sleep(300)
      survivors += alive(sleeps, 'sleep 601').length
      killAll(sleeps, 'sleep 601')
    }
    results[tool] = {ms: median(times), survivors}
  }
  return results
}

// ---- report -----------------------------------------------------------------------------------
const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`)
const ratio = (a, b) => `${(a / b).toFixed(2)}×`
const version = (command) => {
  try {
    return execFileSync('sh', ['-c', command], {encoding: 'utf8'}).trim().split('\n')[0]
  } catch {
    return 'unknown'
  }
}

console.log(`# dev start vs Foreman vs node-foreman (${new Date().toISOString().slice(0, 10)})\n`)
console.log(`Machine: ${cpus().length} × ${cpus()[0].model}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${version('uname -sr')}`)
console.log(`Node ${process.version}; Foreman ${version('foreman version')} on ${version('ruby --version | cut -d" " -f1-2')}; node-foreman ${version(`${nfBin} --version`)}`)
console.log(`Output to a file (not a TTY, no colour). Medians of ${RUNS} runs (start-stop: 5, stop: 3).\n`)

const s = await startStop()
const t = await throughput()
// The relay time leaves out each tool's own start and stop (its `a: true` run): what the line
// relay itself costs, comparable with the raw pipe, which starts nothing.
const relay = (name) => t[name].ms - (s[name]?.ms ?? 0)
console.log(`## Throughput: 2 processes × ${LINES.toLocaleString('en')} lines of ${WIDTH} bytes\n`)
console.log('| | wall time | relay time (wall − start-stop) | lines/s (wall) | damaged lines | dev is faster by (wall) |')
console.log('|---|---|---|---|---|---|')
for (const [name, r] of Object.entries(t)) {
  const lines = Math.round((2 * LINES) / (r.ms / 1000)).toLocaleString('en')
  console.log(`| ${name} | ${fmt(r.ms)} | ${fmt(relay(name))} | ${lines} | ${r.damaged} | ${name === 'dev' ? '—' : ratio(r.ms, t.dev.ms)} |`)
}
const raw = t['raw pipe (cat)'].ms
console.log(`\ndev / raw pipe: ${ratio(t.dev.ms, raw)} wall, ${ratio(relay('dev'), raw)} relay (target ≤ 2×); Foreman / dev: ${ratio(t.foreman.ms, t.dev.ms)} wall (target ≥ 3×)\n`)

const m = await memory()
console.log('## Memory: peak RSS of the supervisor with 20 `sleep` processes\n')
console.log('| | peak RSS | dev uses |')
console.log('|---|---|---|')
for (const [name, r] of Object.entries(m)) console.log(`| ${name} | ${(r.kb / 1024).toFixed(1)} MiB | ${name === 'dev' ? '—' : ratio(m.dev.kb, r.kb)} |`)
const floor = await frameworkFloor()
console.log(`\nFor scale: bare \`node\` peaks at ${(floor.node / 1024).toFixed(1)} MiB, and loading oclif's runner alone (\`import('@oclif/core/run')\`) at ${(floor.oclif / 1024).toFixed(1)} MiB.\n`)

console.log('## Start-stop: a whole run of the Procfile `a: true`\n')
console.log('| | wall time | dev is faster by |')
console.log('|---|---|---|')
for (const [name, r] of Object.entries(s)) console.log(`| ${name} | ${fmt(r.ms)} | ${name === 'dev' ? '—' : ratio(r.ms, s.dev.ms)} |`)
console.log('')

const st = await stopTime()
console.log('## Stop: SIGTERM to the supervisor with 10 processes that exit on SIGTERM\n')
console.log('| | time to exit | processes left running (3 runs) |')
console.log('|---|---|---|')
for (const [name, r] of Object.entries(st)) console.log(`| ${name} | ${fmt(r.ms)} | ${r.survivors} |`)

// ---- JSON (--json FILE) -----------------------------------------------------------------------
const foremanAnchor = `Foreman ${version('foreman version')}`
const nfAnchor = `node-foreman ${version(`${nfBin} --version`)}`
writeFigures('supervisor', [
  figure('throughput, dev / raw pipe (wall)', round(t.dev.ms / raw), '×', 'raw pipe (cat)', '≤ 2×', t.dev.ms / raw <= 2),
  figure('throughput, dev / raw pipe (relay: wall − start-stop)', round(relay('dev') / raw), '×', 'raw pipe (cat)', '≤ 2×', relay('dev') / raw <= 2),
  figure('throughput, Foreman / dev (wall)', round(t.foreman.ms / t.dev.ms), '×', foremanAnchor, '≥ 3×', t.foreman.ms / t.dev.ms >= 3),
  figure('throughput, damaged lines (dev)', t.dev.damaged, 'lines', `${(2 * LINES).toLocaleString('en')} lines`, '0', t.dev.damaged === 0),
  figure('peak RSS, dev / node-foreman (20 processes)', round(m.dev.kb / m['node-foreman'].kb), '×', nfAnchor, '≤ 1×', m.dev.kb <= m['node-foreman'].kb),
  figure('stop of 10 processes after SIGTERM (dev)', round(st.dev.ms / 1000, 3), 's', 'absolute target', '≤ 0.3 s', st.dev.ms <= 300),
  figure('processes left after stop (dev, 3 runs)', st.dev.survivors, 'processes', 'absolute target', '0', st.dev.survivors === 0),
  figure('throughput, dev wall time', round(t.dev.ms, 0), 'ms', `${(2 * LINES).toLocaleString('en')} lines`),
  figure('throughput, node-foreman / dev (wall)', round(t['node-foreman'].ms / t.dev.ms), '×', nfAnchor),
  figure('throughput, damaged lines (node-foreman)', t['node-foreman'].damaged, 'lines', nfAnchor),
  figure('peak RSS, dev', round(m.dev.kb / 1024, 1), 'MiB', '20 sleep processes'),
  figure('start-stop of `a: true`, Foreman / dev', round(s.foreman.ms / s.dev.ms), '×', foremanAnchor),
  figure('start-stop of `a: true`, node-foreman / dev', round(s['node-foreman'].ms / s.dev.ms), '×', nfAnchor),
  figure('start-stop of `a: true`, dev', round(s.dev.ms, 0), 'ms', 'wall time'),
])
