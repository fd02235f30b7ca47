#!/usr/bin/env node
// Compares `dev build` with `tar czf` on the same app: 5,000 small files and no buildpack work
// (only a Procfile, so the built-in "none" buildpack applies), in one run on this machine.
// Usage: node bench/slug-build.mjs [--files N] [--runs N] [--json FILE]   (after npm ci, which builds dev)
//   --json FILE  also write the key figures (ratios against targets) as JSON, for bench/all.mjs
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {cpus, tmpdir, totalmem} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {figure, round, writeFigures} from './lib/report.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const args = process.argv.slice(2)
const option = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback)
const FILES = option('--files', 5000)
const RUNS = option('--runs', 5)

const app = mkdtempSync(join(tmpdir(), 'dev-bench-slug-'))
writeFileSync(join(app, 'Procfile'), 'web: sh serve.sh\n')
for (let i = 0; i < FILES; i++) {
  const dir = join(app, 'assets', String(i % 50))
  if (i < 50) mkdirSync(dir, {recursive: true})
  writeFileSync(join(dir, `file-${i}.txt`), `file ${i}\n${'x'.repeat(200 + (i % 300))}\n`)
}

// The fixed cost of a build: the same command on an app with only a Procfile.
const small = mkdtempSync(join(tmpdir(), 'dev-bench-slug-small-'))
writeFileSync(join(small, 'Procfile'), 'web: sh serve.sh\n')

const time = (command, argv, cwd = app) => {
  const started = process.hrtime.bigint()
  const result = spawnSync(command, argv, {cwd, stdio: ['ignore', 'ignore', 'pipe']})
  if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr}`)
  return Number(process.hrtime.bigint() - started) / 1e6
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

const tarTimes = []
const devTimes = []
const fixedTimes = []
for (let run = 0; run < RUNS; run++) {
  tarTimes.push(time('tar', ['czf', join(tmpdir(), 'dev-bench-slug.tgz'), '-C', app, '--exclude=./.dev', '.']))
  devTimes.push(time(process.execPath, [join(root, 'bin/run.js'), 'build', '-d', app]))
  fixedTimes.push(time(process.execPath, [join(root, 'bin/run.js'), 'build', '-d', small], small))
}
const slugs = join(app, '.dev', 'slugs')
const slugSize = statSync(join(slugs, execFileSync('ls', [slugs], {encoding: 'utf8'}).split('\n').find((name) => name.endsWith('.tgz')))).size
const tarSize = statSync(join(tmpdir(), 'dev-bench-slug.tgz')).size

console.log(`# dev build vs tar czf (${new Date().toISOString().slice(0, 10)})\n`)
console.log(`Machine: ${cpus().length} × ${cpus()[0].model}, ${Math.round(totalmem() / 2 ** 30)} GiB; Node ${process.version}; ${execFileSync('tar', ['--version'], {encoding: 'utf8'}).split('\n')[0]}`)
console.log(`App: ${FILES.toLocaleString('en')} files of 200-500 bytes in 50 directories, plus a Procfile. Medians of ${RUNS} runs.\n`)
console.log('| | wall time | archive size |')
console.log('|---|---|---|')
console.log(`| tar czf | ${Math.round(median(tarTimes))} ms | ${(tarSize / 1024).toFixed(0)} KiB |`)
console.log(`| dev build | ${Math.round(median(devTimes))} ms | ${(slugSize / 1024).toFixed(0)} KiB |`)
console.log(`| dev build of a Procfile-only app (its fixed cost) | ${Math.round(median(fixedTimes))} ms | |`)
const packing = median(devTimes) - median(fixedTimes)
console.log(`\ndev build / tar czf: ${(median(devTimes) / median(tarTimes)).toFixed(2)}× wall (target ≤ 2×); without the fixed cost: ${(packing / median(tarTimes)).toFixed(2)}×`)
rmSync(app, {recursive: true, force: true})
rmSync(small, {recursive: true, force: true})

const wall = median(devTimes) / median(tarTimes)
writeFigures('build', [
  figure('dev build / tar czf (wall)', round(wall), '×', execFileSync('tar', ['--version'], {encoding: 'utf8'}).split('\n')[0].replace('tar (GNU tar)', 'GNU tar'), '≤ 2×', wall <= 2),
  figure('dev build / tar czf without the fixed cost', round(packing / median(tarTimes)), '×', 'tar czf'),
  figure('dev build wall time', round(median(devTimes), 0), 'ms', `${FILES.toLocaleString('en')} files`),
  figure('dev build fixed cost (Procfile-only app)', round(median(fixedTimes), 0), 'ms', 'wall time'),
  figure('tar czf wall time', round(median(tarTimes), 0), 'ms', `${FILES.toLocaleString('en')} files`),
])
