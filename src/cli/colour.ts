import type {Writable} from 'node:stream'

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
