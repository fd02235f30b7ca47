import {fromTarget, settle, succeeded, type TargetRun} from '../remote/app-targets.js'
import {stderrChalk} from './colour.js'

/**
 * Prints what each target answered (its lines prefixed with its name when there are several),
 * then fails the command if any target failed, each failure on its own line.
 */
export function showOutcomes<T>(run: TargetRun<T>, show: (value: T, name: string) => string): void {
  for (const {name, value} of succeeded(run)) process.stdout.write(fromTarget(name, show(value, name), run.several))
  failIfAnyFailed(run)
}

/** `--json`: one entry per target that answered, `{"host": NAME, "app": APP, ...}` (no `app` for host-wide listings). */
export function showJson<T>(run: TargetRun<T>, shape: (value: T) => object, {withApp = true}: {withApp?: boolean} = {}): void {
  const entries = succeeded(run).map(({name, value}) => ({host: name, ...(withApp ? {app: run.app} : {}), ...shape(value)}))
  process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`)
  failIfAnyFailed(run)
}

export function failIfAnyFailed<T>(run: TargetRun<T>): void {
  settle(run, printError)
}

/** One `error: …` line on stderr. */
export function printError(line: string): void {
  process.stderr.write(`${stderrChalk().red('error:')} ${line}\n`)
}
