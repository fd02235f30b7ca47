// The machine-readable side of the bench scripts: `--json FILE` writes a script's key figures as
//   {"bench": "router", "machine": "...", "date": ISO, "figures": [{name, value, unit, anchor, target, met}]}
// (met: true/false against the target, null for a raw number with no target), or, when a
// tool the script needs is missing, {"bench", "machine", "date", "skipped": reason}.
// bench/all.mjs reads these files to write the summary at the top of docs/benchmarks.md.
// Not a bench script itself (bench/all.mjs runs only the scripts it lists).
import {writeFileSync} from 'node:fs'
import {cpus, totalmem} from 'node:os'

const args = process.argv.slice(2)
/** The FILE of `--json FILE`, or undefined. */
export const jsonFile = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined

export const machine = () => `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`

/** Rounds to `digits` decimals (ratios 2, times in ms 0) so the JSON stays readable. */
export const round = (value, digits = 2) => (Number.isFinite(value) ? Number(value.toFixed(digits)) : value)

/** One figure; `met` is null when there is no target. */
export const figure = (name, value, unit, anchor, target = null, met = null) => ({name, value, unit, anchor, target, met: target === null ? null : met})

/** Writes the figures to the `--json` file, if one was given. */
export function writeFigures(bench, figures) {
  if (jsonFile === undefined) return
  writeFileSync(jsonFile, `${JSON.stringify({bench, machine: machine(), date: new Date().toISOString(), figures}, null, 2)}\n`)
}

/** A tool the script needs is missing: says so on stderr (as the scripts always did), records the
 * reason in the `--json` file, and exits 1. */
export function skip(bench, reason) {
  console.error(reason)
  if (jsonFile !== undefined) writeFileSync(jsonFile, `${JSON.stringify({bench, machine: machine(), date: new Date().toISOString(), skipped: reason}, null, 2)}\n`)
  process.exit(1)
}
