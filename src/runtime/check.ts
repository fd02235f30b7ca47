import {readdir} from 'node:fs/promises'
import {join} from 'node:path'

import {scanAppEnv} from './app-env.js'
import {type AppFiles} from './app-files.js'
import {displayPath} from './display-path.js'
import {dotenvDisagreements} from './dotenv-compat.js'
import {gitTrackedPaths} from './git-tracked.js'
import {errorsOf, type Problem} from './problem.js'
import {RELEASE_TYPE, scanProcfile, type ProcessType} from './procfile.js'
import {readTextFileIfExists} from './text-file.js'

/** What `dev check` reports; this is also the shape of `dev check --json`. */
export interface CheckReport {
  valid: boolean
  processes: ProcessType[]
  env_files: string[]
  problems: Problem[]
}

/** Names that look like a Procfile but are never read as one. */
const PROCFILE_LOOKALIKES = ['Procfile.txt', 'procfile', 'procfile.txt', 'ProcFile']
const MENTIONS_PORT = /\$PORT\b|\$\{PORT\}/

/** Validates the Procfile and the env files `dev start` would load, collecting every problem. */
export async function checkApp(files: AppFiles, inherited: NodeJS.ProcessEnv = process.env): Promise<CheckReport> {
  const problems: Problem[] = []
  const procfileDisplay = displayPath(files.procfile, files.cwd)

  const text = await readTextFileIfExists(files.procfile)
  let processes: ProcessType[] = []
  if (text === undefined) {
    problems.push({file: procfileDisplay, line: null, severity: 'error', message: 'does not exist; create it, or point to the Procfile with -f PATH'})
  } else {
    const scan = scanProcfile(text, procfileDisplay)
    processes = scan.types
    problems.push(...scan.problems, ...processWarnings(processes, procfileDisplay))
  }
  problems.push(...(await lookalikeWarnings(files)))

  const env = await scanAppEnv(files, inherited)
  problems.push(...env.problems)
  for (const file of env.files) problems.push(...dotenvDisagreements(file))
  const tracked = await gitTrackedPaths(env.files.map((file) => file.path))
  for (const file of env.files) {
    if (!tracked.has(file.path)) continue
    problems.push({
      file: file.display,
      line: null,
      severity: 'warning',
      message: `is tracked by git, so its secrets are in source control; run "git rm --cached ${file.display}" and add it to .gitignore`,
    })
  }

  return {
    valid: errorsOf(problems).length === 0,
    processes,
    env_files: env.files.map((file) => file.display),
    problems: byFileAndLine(problems),
  }
}

/** Problems grouped by file (in the order the files were read), then by line. */
function byFileAndLine(problems: readonly Problem[]): Problem[] {
  const fileOrder = [...new Set(problems.map((problem) => problem.file))]
  return problems.toSorted((a, b) => fileOrder.indexOf(a.file) - fileOrder.indexOf(b.file) || (a.line ?? 0) - (b.line ?? 0))
}

function processWarnings(processes: readonly ProcessType[], file: string): Problem[] {
  const problems: Problem[] = []
  for (const type of processes) {
    if (type.name === 'web' && !MENTIONS_PORT.test(type.command)) {
      problems.push({
        file,
        line: type.line,
        severity: 'warning',
        message: 'web does not mention $PORT; on a host it only gets traffic on $PORT, so pass it (for example "--port $PORT")',
      })
    }
    if (type.name === RELEASE_TYPE) {
      problems.push({
        file,
        line: type.line,
        severity: 'warning',
        message: 'release runs once on each deploy, before the new release starts; dev start runs it only when named ("dev start release")',
      })
    }
  }
  return problems
}

async function lookalikeWarnings(files: AppFiles): Promise<Problem[]> {
  const names = new Set(await readdir(files.root).catch(() => [] as string[]))
  const reading = (name: string) => join(files.root, name) === files.procfile
  return PROCFILE_LOOKALIKES.filter((name) => names.has(name) && !reading(name)).map((name) => ({
    file: displayPath(join(files.root, name), files.cwd),
    line: null,
    severity: 'warning' as const,
    message: 'is not read: only a file named exactly "Procfile" is; rename it, or pass it with -f',
  }))
}
