#!/usr/bin/env node
// `npm run bench`: runs every bench script in turn, each as a child process with `--json` to a
// temporary file (its tables still print as it goes), then rewrites only the generated summary at
// the top of docs/benchmarks.md, between the markers below: machine, date, and one table of each
// figure against its anchor and target. The hand-written sections under it are left alone.
// A script whose tool is missing (Foreman, wrk, nginx, sshd, …) is reported as skipped with the
// reason, not as a failure; a script that fails is reported, and the exit status is then 1.
// Usage: node bench/all.mjs [--quick] [--only NAME,...] [--no-write]
//   --quick      each script with its own short settings (fewer lines, files, runs, seconds): to try
//                the whole chain fast; the summary then says its figures are not for comparing
//   --only       run only these scripts (names: supervisor, build, agent, router, deploy)
//   --no-write   print the summary instead of writing docs/benchmarks.md
import {spawn} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {cpus, loadavg, release, tmpdir, type} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {machine} from './lib/report.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const DOC = join(root, 'docs/benchmarks.md')
const START = '<!-- bench:summary:start -->'
const END = '<!-- bench:summary:end -->'

/** Every bench script, in the order they run, with the settings `--quick` gives each. */
const SCRIPTS = [
  {name: 'supervisor', file: 'local-supervisor.mjs', what: '`dev start` vs Foreman, node-foreman, raw pipe', quick: ['--lines', '20000', '--runs', '1']},
  {name: 'build', file: 'slug-build.mjs', what: '`dev build` vs `tar czf`', quick: ['--files', '1000', '--runs', '1']},
  {name: 'agent', file: 'agent-restore.mjs', what: 'host agent back after `kill -9`', quick: ['--runs', '1']},
  {name: 'router', file: 'router.mjs', what: 'router vs nginx under wrk', quick: ['--seconds', '2', '--runs', '1']},
  {name: 'deploy', file: 'deploy.mjs', what: '`dev deploy` to sshd test hosts', quick: ['--runs', '1']},
]

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const write = !args.includes('--no-write')
const only = args.includes('--only') ? args[args.indexOf('--only') + 1]?.split(',') : undefined
for (const [index, arg] of args.entries()) {
  if (!['--quick', '--no-write', '--only'].includes(arg) && args[index - 1] !== '--only') {
    console.error(`unknown option ${arg}\nusage: node bench/all.mjs [--quick] [--only ${SCRIPTS.map((s) => s.name).join(',')}] [--no-write]`)
    process.exit(2)
  }
}
const unknown = only?.filter((name) => !SCRIPTS.some((script) => script.name === name)) ?? []
if (unknown.length > 0) {
  console.error(`unknown script ${unknown.join(', ')}: one of ${SCRIPTS.map((s) => s.name).join(', ')}`)
  process.exit(2)
}

const started = new Date()
const loadBefore = loadavg()[0]
const work = mkdtempSync(join(tmpdir(), 'dev-bench-all-'))

/** Runs one script with --json; resolves to {status: 'ok'|'skipped'|'failed', ...}. */
function run(script) {
  const jsonFile = join(work, `${script.name}.json`)
  const argv = [join(root, 'bench', script.file), ...(quick ? script.quick : []), '--json', jsonFile]
  console.log(`\n==> ${script.name}: node bench/${script.file} ${argv.slice(1, -2).join(' ')}\n`.replace(/ \n/, '\n'))
  const begun = Date.now()
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argv, {cwd: root, stdio: 'inherit'})
    child.once('error', (error) => resolve({script, status: 'failed', reason: error.message}))
    child.once('exit', (code, signal) => {
      const seconds = (Date.now() - begun) / 1000
      let report
      try {
        report = existsSync(jsonFile) ? JSON.parse(readFileSync(jsonFile, 'utf8')) : undefined
      } catch (error) {
        resolve({script, status: 'failed', seconds, reason: `unreadable JSON: ${error.message}`})
        return
      }
      if (report?.skipped) resolve({script, status: 'skipped', seconds, reason: report.skipped, report})
      else if (code === 0 && report?.figures) resolve({script, status: 'ok', seconds, report})
      else resolve({script, status: 'failed', seconds, reason: `exited with ${signal ?? `code ${code}`}${report ? '' : ', no figures written'} (its output is above)`})
    })
  })
}

const results = []
try {
  for (const script of SCRIPTS.filter((s) => only === undefined || only.includes(s.name))) results.push(await run(script))
} finally {
  rmSync(work, {recursive: true, force: true})
}

// ---- the summary ------------------------------------------------------------------------------
const cell = (text) => String(text ?? '—').replaceAll('|', '\\|').replaceAll('\n', ' ')
function value(figure) {
  const {value: number, unit} = figure
  if (typeof number !== 'number') return cell(number)
  const shown = Math.abs(number) >= 1000 ? number.toLocaleString('en', {maximumFractionDigits: 2}) : String(number)
  if (unit === '×') return `${shown}×`
  return unit ? `${shown} ${unit}` : shown
}
const mark = (met) => (met === true ? '✓' : met === false ? '✗' : '—')

const finished = new Date()
const loadAfter = loadavg()[0]
const cores = cpus().length
const minutes = ((finished - started) / 60000).toFixed(1)
const firstReport = results.find((result) => result.report)?.report
const lines = [
  START,
  '## Summary (generated by `npm run bench`; do not edit by hand)',
  '',
  `Machine: ${firstReport?.machine ?? machine()}, ${type()} ${release()}`,
  `Date: ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC (${minutes} min); load average ${loadBefore.toFixed(2)} at the start, ${loadAfter.toFixed(2)} at the end, on ${cores} cores`,
  '',
  quick
    ? 'A quick run (`node bench/all.mjs --quick`: each script with fewer lines, files, runs and seconds): it shows the chain works; its figures are not for comparing.'
    : 'All figures come from one run of `npm run bench` (each script takes its own medians within that run), on a machine that may have been busy with other work (see the load average above): the anchors ran in the same run under the same load, so ratios suffer less than absolute times, but a busy machine moves both. Ratios are dev against the anchor. The sections below explain each benchmark and record earlier runs.',
  '',
  '| benchmark | figure | value | anchor | target | met |',
  '|---|---|---|---|---|---|',
]
for (const result of results) {
  for (const figure of result.report?.figures ?? []) {
    lines.push(`| ${result.script.name} | ${cell(figure.name)} | ${cell(value(figure))} | ${cell(figure.anchor)} | ${cell(figure.target)} | ${mark(figure.met)} |`)
  }
}
const notRun = results.filter((result) => result.status !== 'ok')
if (notRun.length > 0) {
  lines.push('')
  for (const result of notRun) lines.push(`- ${result.script.name} (${result.script.what}): **${result.status}**: ${cell(result.reason)}`)
}
const targets = results.flatMap((result) => result.report?.figures ?? []).filter((figure) => figure.met !== null)
lines.push('', `Targets met: ${targets.filter((figure) => figure.met).length} of ${targets.length}.`, END)
const section = lines.join('\n')

/** The document with the section between the markers replaced, or inserted after the intro. */
function withSection(text) {
  const from = text.indexOf(START)
  const to = text.indexOf(END)
  if (from !== -1 && to > from) return text.slice(0, from) + section + text.slice(to + END.length)
  const docLines = text.split('\n')
  let at = docLines.findIndex((line) => line.startsWith('# '))
  at = at === -1 ? 0 : at + 1
  while (at < docLines.length && docLines[at].trim() === '') at++
  while (at < docLines.length && docLines[at].trim() !== '') at++ // the intro paragraph
  docLines.splice(at, 0, '', section)
  return docLines.join('\n')
}

console.log('\n==> summary\n')
for (const result of results) console.log(`${result.script.name}: ${result.status}${result.seconds ? ` (${result.seconds.toFixed(0)} s)` : ''}${result.reason ? `: ${result.reason}` : ''}`)
if (write) {
  const temp = `${DOC}.${process.pid}.tmp`
  writeFileSync(temp, withSection(readFileSync(DOC, 'utf8')))
  renameSync(temp, DOC)
  console.log(`\nwrote the summary at the top of ${DOC}`)
} else {
  console.log(`\n${section}`)
}
process.exitCode = results.some((result) => result.status === 'failed') ? 1 : 0
