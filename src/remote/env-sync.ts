import {stat} from 'node:fs/promises'

import {writeFileAtomic} from '../runtime/atomic-write.js'
import {parseEnvFile} from '../runtime/env-file.js'
import {setEnvVars} from '../runtime/env-file-edit.js'
import {readTextFileIfExists} from '../runtime/text-file.js'

/** How one side's vars compare with the other's: what is new there, and what differs. */
export interface EnvDiff {
  added: string[]
  differing: string[]
}

export function diffVars(from: Readonly<Record<string, string>>, into: Readonly<Record<string, string>>): EnvDiff {
  const keys = Object.keys(from).sort()
  return {added: keys.filter((key) => !(key in into)), differing: keys.filter((key) => key in into && into[key] !== from[key])}
}

/**
 * Which differing vars may be overwritten: all with --overwrite; else each one asked about on a
 * terminal; else none (they are kept, and the caller says so).
 */
export async function chooseOverwrites(differing: readonly string[], where: string, options: {overwrite: boolean; ask?: (question: string) => Promise<boolean>}): Promise<string[]> {
  if (options.overwrite) return [...differing]
  const chosen: string[] = []
  if (options.ask === undefined) return chosen
  for (const key of differing) if (await options.ask(`${key} differs in ${where}. Overwrite it?`)) chosen.push(key)
  return chosen
}

/** The vars an env file assigns (empty when it does not exist); `${VAR}` expands from the file and the environment. */
export async function readEnvVars(path: string, shown: string, env: NodeJS.ProcessEnv = process.env): Promise<Record<string, string>> {
  const text = await readTextFileIfExists(path)
  if (text === undefined) return {}
  return Object.fromEntries(parseEnvFile(text, shown, (name) => env[name]).map((entry) => [entry.key, entry.value]))
}

/** Sets vars in an env file, in place, atomically; a new file is readable by its owner only. */
export async function writeEnvVars(path: string, vars: Readonly<Record<string, string>>): Promise<void> {
  const text = (await readTextFileIfExists(path)) ?? ''
  const mode = await stat(path).then(
    (info) => info.mode & 0o777,
    () => 0o600,
  )
  await writeFileAtomic(path, setEnvVars(text, vars), mode)
}
