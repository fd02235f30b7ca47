import {text} from 'node:stream/consumers'

import {UsageError} from '../runtime/dev-error.js'
import {ENV_KEY} from '../runtime/env-file.js'
import {terminalSecret} from './ask-passphrase.js'

/**
 * The variables `dev config set` was given: `KEY=VALUE` each, or one bare `KEY` whose value is read
 * from stdin (asked without echo on a terminal), which keeps a secret out of the shell's history.
 */
export async function configAssignments(args: readonly string[], stdin: NodeJS.ReadStream = process.stdin): Promise<Record<string, string>> {
  if (args.length === 0) throw new UsageError('say what to set: dev config set KEY=VALUE... (or dev config set KEY to read the value from stdin)')
  const vars: Record<string, string> = {}
  const bare = args.filter((arg) => !arg.includes('='))
  if (bare.length > 1) throw new UsageError(`only one KEY without =VALUE can read its value from stdin; got ${bare.join(', ')}`)
  for (const arg of args) {
    const eq = arg.indexOf('=')
    const key = eq === -1 ? arg : arg.slice(0, eq)
    if (!ENV_KEY.test(key)) throw new UsageError(`"${key}" cannot name a config var: letters, digits, "_", "." and "-", not starting with a digit`)
    if (key in vars) throw new UsageError(`${key} is given twice`)
    vars[key] = eq === -1 ? await readValue(key, stdin) : arg.slice(eq + 1)
  }
  return vars
}

async function readValue(key: string, stdin: NodeJS.ReadStream): Promise<string> {
  const ask = stdin.isTTY ? terminalSecret() : undefined
  if (ask) return ask(`Value for ${key}: `)
  // Piped: the whole input, without the one newline that ends it.
  return (await text(stdin)).replace(/\r?\n$/, '')
}
