import {existsSync} from 'node:fs'
import {basename, resolve} from 'node:path'

import {displayPath} from './display-path.js'
import {type AppFiles} from './app-files.js'
import {EnvFileError, scanEnvFile, type EnvEntry} from './env-file.js'
import {errorsOf, formatProblem, type Problem} from './problem.js'
import {readTextFileIfExists} from './text-file.js'

export interface LoadedEnvFile {
  path: string
  /** The path as shown to the user. */
  display: string
  entries: EnvEntry[]
}

export interface AppEnvScan {
  /** The files that were read, in order. */
  files: LoadedEnvFile[]
  /** The variables the files define, merged (later files win). */
  vars: Map<string, string>
  problems: Problem[]
}

/**
 * Reads the app's env files in order. Never throws for bad content: a missing file that was named
 * with -e, and every bad line, is an error problem. `${VAR}` looks at earlier keys of the same file,
 * then at earlier files, then at `inherited`.
 */
export async function scanAppEnv(files: AppFiles, inherited: NodeJS.ProcessEnv = process.env): Promise<AppEnvScan> {
  const vars = new Map<string, string>()
  const loaded: LoadedEnvFile[] = []
  const problems: Problem[] = []
  for (const path of files.envFiles) {
    const display = displayPath(path, files.cwd)
    const text = await readTextFileIfExists(path)
    if (text === undefined) {
      if (files.explicitEnv) problems.push({file: display, line: null, severity: 'error', message: missingEnvFileMessage(path, files)})
      continue
    }
    const scan = scanEnvFile(text, display, (name) => vars.get(name) ?? inherited[name])
    problems.push(...scan.problems)
    for (const entry of scan.entries) vars.set(entry.key, entry.value)
    loaded.push({path, display, entries: scan.entries})
  }
  return {files: loaded, vars, problems}
}

/** Like scanAppEnv, but rejects the whole set when any file has an error: nothing is half-loaded. */
export async function loadAppEnv(files: AppFiles, inherited: NodeJS.ProcessEnv = process.env): Promise<AppEnvScan> {
  const scan = await scanAppEnv(files, inherited)
  const errors = errorsOf(scan.problems)
  if (errors.length > 0) throw new EnvFileError(errors.map(formatProblem).join('\n'), {problems: errors})
  return scan
}

function missingEnvFileMessage(path: string, files: AppFiles): string {
  const underRoot = resolve(files.root, basename(path))
  const hint = underRoot !== path && existsSync(underRoot) ? `; did you mean ${displayPath(underRoot, files.cwd)}?` : '; check the -e/--env path'
  return `env file does not exist${hint}`
}
