import {scanEnvFile} from './env-file.js'
import {normalizeText} from './text-file.js'

/**
 * A value as env-file text that reads back as exactly that value (docs/procfile-and-env.md): bare
 * when it is plain, single-quoted (taken literally) when it has no single quote or carriage
 * return, else double-quoted with escapes. Nothing in it is ever expanded when read.
 */
export function envValueText(value: string): string {
  if (/^[A-Za-z0-9_./:@%+,-]+$/.test(value)) return value
  // Not with a "\r": reading turns CRLF into LF, so only the "\r" escape keeps a carriage return.
  if (!value.includes("'") && !value.includes('\r')) return `'${value}'`
  const escaped = value.replace(/[\\"$]/g, (char) => `\\${char}`).replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')
  return `"${escaped}"`
}

/**
 * The env file's text with these variables set: a key already assigned gets its last assignment
 * replaced where it stands (keeping `export` and the comments around it), a new key is appended.
 */
export function setEnvVars(text: string, vars: Readonly<Record<string, string>>): string {
  let out = normalizeText(text)
  const {entries} = scanEnvFile(out, '.env')
  const appended: string[] = []
  for (const [key, value] of Object.entries(vars)) {
    const last = entries.filter((entry) => entry.key === key).at(-1)
    const assignment = `${key}=${envValueText(value)}`
    if (last === undefined) {
      appended.push(assignment)
      continue
    }
    const at = out.indexOf(last.source, lineStart(out, last.line))
    const exported = /^export[ \t]/.test(last.source) ? 'export ' : ''
    out = `${out.slice(0, at)}${exported}${assignment}${out.slice(at + last.source.length)}`
    // Later entries moved; read the positions again.
    entries.splice(0, entries.length, ...scanEnvFile(out, '.env').entries)
  }
  if (appended.length === 0) return out
  const separator = out === '' || out.endsWith('\n') ? '' : '\n'
  return `${out}${separator}${appended.join('\n')}\n`
}

function lineStart(text: string, line: number): number {
  let at = 0
  for (let current = 1; current < line; current++) at = text.indexOf('\n', at) + 1
  return at
}

/** POSIX shell text that sets the variable to exactly this value: `KEY='value'`. */
export function shellAssignment(key: string, value: string): string {
  return `${key}='${value.replace(/'/g, `'\\''`)}'`
}
