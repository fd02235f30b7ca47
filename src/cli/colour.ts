import type {Writable} from 'node:stream'

import {Chalk, type ChalkInstance} from 'chalk'

/**
 * Whether to colour output written to `out`: --color always/never decide; otherwise NO_COLOR turns
 * it off, FORCE_COLOR (other than 0) turns it on, and else only a TTY gets colour.
 */
export function colourEnabled(choice: 'auto' | 'always' | 'never', out: Writable, env: NodeJS.ProcessEnv = process.env): boolean {
  if (choice !== 'auto') return choice === 'always'
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false'
  return (out as Writable & {isTTY?: boolean}).isTTY === true
}

/**
 * A chalk for messages on stderr, by the rules above. (chalk's own detection would also obey a
 * `--color` among dev's arguments, which is `dev start`'s flag, not a wish for coloured errors.)
 */
export function stderrChalk(): ChalkInstance {
  return new Chalk({level: colourEnabled('auto', process.stderr) ? 1 : 0})
}
