import {Errors} from '@oclif/core'

import {isDevError} from '../runtime/dev-error.js'
import {stderrChalk} from './colour.js'
import {formatProblem} from '../runtime/problem.js'

/** True when DEBUG asks for dev's internals (`DEBUG=dev*`, `DEBUG=*`). */
export function debugEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.DEBUG ?? '').split(/[\s,]+/).some((pattern) => pattern === '*' || pattern.startsWith('dev'))
}

/**
 * Prints an error the way every dev command does: one line per problem, no stack unless DEBUG is
 * set, and returns the exit code (1 for errors, 2 for usage errors, the code of an explicit exit).
 */
export function reportError(error: unknown, write: (text: string) => void = (text) => process.stderr.write(text)): number {
  const tag = stderrChalk().red('error:')
  if (error instanceof Errors.ExitError) return error.oclif.exit ?? 0
  if (isDevError(error)) {
    const lines = error.problems.length > 0 ? error.problems.map(formatProblem) : [`${tag} ${error.message}`]
    write(`${lines.join('\n')}\n`)
  } else if (isOclifError(error)) {
    // oclif's parse errors span lines ("Parsing --port\n\tExpected an integer…"); one line is enough.
    const message = error.message
      .replace(/\n+See more help with --help$/, '')
      .split('\n')
      .map((part) => part.trim())
      .filter(Boolean)
      .join(': ')
    write(`${tag} ${message} (see --help)\n`)
  } else {
    const message = error instanceof Error ? error.message : String(error)
    write(`${tag} ${message}${debugEnabled() ? '' : ' (run with DEBUG=dev* for details)'}\n`)
  }
  if (debugEnabled() && error instanceof Error && error.stack) write(`${error.stack}\n`)
  if (isDevError(error)) return error.exitCode
  if (isOclifError(error)) return error.oclif.exit ?? 2
  return 1
}

function isOclifError(error: unknown): error is Error & {oclif: {exit?: number}} {
  return error instanceof Error && typeof (error as {oclif?: unknown}).oclif === 'object'
}
