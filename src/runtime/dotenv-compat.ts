import {parse as dotenvParse} from 'dotenv'

import type {LoadedEnvFile} from './app-env.js'
import type {Problem} from './problem.js'

/**
 * Many apps also load `.env` themselves with the `dotenv` package, whose grammar is looser than
 * dev's (it cuts `a#b` at the `#`, keeps `\t` literally in double quotes, accepts backticks).
 * Warn where the two read a value differently, so the app sees the same value under `dev start`
 * and under `node -r dotenv/config`. Values that expand `$VAR` are skipped: dotenv never expands.
 * Messages never include values, which may be secrets.
 */
export function dotenvDisagreements(file: LoadedEnvFile): Problem[] {
  const problems: Problem[] = []
  for (const entry of file.entries) {
    if (entry.source.includes('$')) continue
    const theirs = dotenvParse(entry.source)[entry.key]
    if (theirs === entry.value) continue
    problems.push({
      file: file.display,
      line: entry.line,
      severity: 'warning',
      message: `the dotenv package reads ${entry.key} differently than dev does, so an app that loads .env itself would see another value (see docs/procfile-and-env.md)`,
    })
  }
  return problems
}
