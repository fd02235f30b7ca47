import {DevError} from './dev-error.js'
import {errorsOf, formatProblem, type Problem} from './problem.js'
import {normalizeText} from './text-file.js'

/** One KEY=VALUE assignment of an env file, with its value already unquoted and expanded. */
export interface EnvEntry {
  key: string
  value: string
  /** 1-based line where the key stands. */
  line: number
  quote: 'none' | 'single' | 'double'
  /** The assignment's source text, from the key to the end of its value (comment excluded). */
  source: string
}

export interface EnvFileScan {
  /** Valid assignments in file order; a repeated key appears once per assignment. */
  entries: EnvEntry[]
  problems: Problem[]
}

/** Looks a name up outside the file being read: earlier env files, then the inherited environment. */
export type EnvLookup = (name: string) => string | undefined

/** Thrown for an env file that cannot be used; `problems` lists every error in it. */
export class EnvFileError extends DevError {}

export const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/
const KEY_TOKEN = /[^\s=#:'"]*/y
const SUBSTITUTION = /\$(?:\{([A-Za-z_][A-Za-z0-9_.-]*)(?::-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/y
const UNTERMINATED = Symbol('unterminated')
const BAD_VALUE = Symbol('bad value')
/**
 * The most a variable may take as `KEY=value` (with its terminating NUL): Linux refuses (E2BIG) to
 * start a process with a longer environment string.
 */
export const MAX_ENV_VAR_BYTES = 128 * 1024
const DOUBLE_QUOTE_ESCAPES: Record<string, string> = {n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\', $: '$'}

/**
 * Reads env-file text (the grammar is in docs/procfile-and-env.md). Never throws: every bad line
 * becomes an error problem at `file:line`; a repeated key or an undefined variable is a warning.
 */
export function scanEnvFile(text: string, file: string, lookup: EnvLookup = () => undefined): EnvFileScan {
  return new EnvFileScanner(normalizeText(text), file, lookup).scan()
}

/** Like scanEnvFile, but throws an EnvFileError naming every error when there is any. */
export function parseEnvFile(text: string, file: string, lookup?: EnvLookup): EnvEntry[] {
  const {entries, problems} = scanEnvFile(text, file, lookup)
  const errors = errorsOf(problems)
  if (errors.length > 0) throw new EnvFileError(errors.map(formatProblem).join('\n'), {problems: errors})
  return entries
}

class EnvFileScanner {
  private pos = 0
  private line = 1
  private readonly entries: EnvEntry[] = []
  private readonly problems: Problem[] = []
  private readonly defined = new Map<string, {value: string; line: number}>()

  constructor(
    private readonly src: string,
    private readonly file: string,
    private readonly lookup: EnvLookup,
  ) {}

  scan(): EnvFileScan {
    this.warnNonUtf8()
    while (this.pos < this.src.length) {
      const finished = this.scanLine()
      if (finished === 'stop') break
    }
    return {entries: this.entries, problems: this.problems}
  }

  /** Reads one logical line (an assignment may span several physical lines). */
  private scanLine(): 'next' | 'stop' {
    this.skipBlanks()
    const ch = this.src[this.pos]
    if (ch === undefined) return 'stop'
    if (ch === '\n' || ch === '#') return this.nextLine()

    const entryLine = this.line
    const start = this.pos
    if (this.src.startsWith('export', this.pos) && /[ \t]/.test(this.src[this.pos + 6] ?? '')) {
      this.pos += 6
      this.skipBlanks()
    }
    KEY_TOKEN.lastIndex = this.pos
    const key = KEY_TOKEN.exec(this.src)![0]
    this.pos += key.length
    if (key === '') return this.fail(entryLine, 'expected KEY=VALUE')
    // The text of a bad line is never repeated: it may be a secret pasted on a line of its own.
    if (!ENV_KEY.test(key)) {
      return this.fail(entryLine, 'invalid key: a key starts with a letter or "_" and holds letters, digits, "_", "." and "-"')
    }
    this.skipBlanks()
    if (this.src[this.pos] !== '=') {
      const yaml = this.src[this.pos] === ':' ? '; "KEY: value" is not supported, write KEY=value' : ''
      return this.fail(entryLine, `expected KEY=VALUE: no "=" after the key${yaml}`)
    }
    this.pos += 1
    const blanks = this.skipBlanks()

    const opener = this.src[this.pos]
    const quote: EnvEntry['quote'] = opener === "'" ? 'single' : opener === '"' ? 'double' : 'none'
    const value =
      quote === 'single' ? this.singleQuoted(key, entryLine) : quote === 'double' ? this.doubleQuoted(key, entryLine) : this.unquoted(entryLine, blanks > 0)
    if (value === UNTERMINATED) return 'stop'
    const source = this.src.slice(start, this.pos).trimEnd()
    if (quote !== 'none' && !this.endOfValue()) return this.nextLine()
    if (value !== BAD_VALUE) this.record({key, value, line: entryLine, quote, source})
    return this.nextLine()
  }

  private singleQuoted(key: string, entryLine: number): string | typeof UNTERMINATED {
    const close = this.src.indexOf("'", this.pos + 1)
    if (close === -1) return this.unterminated(key, "'", entryLine)
    const value = this.src.slice(this.pos + 1, close)
    this.advanceTo(close + 1)
    return value
  }

  private doubleQuoted(key: string, entryLine: number): string | typeof BAD_VALUE | typeof UNTERMINATED {
    let close = this.pos + 1
    while (close < this.src.length && this.src[close] !== '"') close += this.src[close] === '\\' ? 2 : 1
    if (close >= this.src.length) return this.unterminated(key, '"', entryLine)
    const value = this.decode(this.src.slice(this.pos + 1, close), 'double', entryLine)
    this.advanceTo(close + 1)
    return value
  }

  private unquoted(entryLine: number, afterBlank: boolean): string | typeof BAD_VALUE {
    let end = this.src.indexOf('\n', this.pos)
    if (end === -1) end = this.src.length
    const rest = this.src.slice(this.pos, end)
    // A comment starts at a "#" that follows whitespace (or that follows "=" plus whitespace).
    const comment = afterBlank && rest.startsWith('#') ? 0 : rest.search(/[ \t]#/)
    const body = (comment === -1 ? rest : rest.slice(0, comment)).trim()
    this.pos += comment === -1 ? rest.length : comment
    return this.decode(body, 'none', entryLine)
  }

  /** Unescapes and expands a value body; BAD_VALUE (after recording the error) on a bad ${...}. */
  private decode(body: string, mode: 'double' | 'none', entryLine: number): string | typeof BAD_VALUE {
    let out = ''
    let i = 0
    while (i < body.length) {
      const ch = body[i]!
      if (ch === '\\') {
        const next = body[i + 1]
        const escaped = mode === 'double' ? DOUBLE_QUOTE_ESCAPES[next ?? ''] : next === '$' ? '$' : undefined
        if (escaped !== undefined) {
          out += escaped
          i += 2
        } else {
          out += ch
          i += 1
        }
        continue
      }
      if (ch === '$') {
        SUBSTITUTION.lastIndex = i
        const match = SUBSTITUTION.exec(body)
        if (match) {
          const [whole, braced, fallback, bare] = match
          out += this.resolve((braced ?? bare)!, fallback, entryLine + countNewlines(body.slice(0, i)))
          i += whole.length
          continue
        }
        if (body[i + 1] === '{') {
          this.error(
            entryLine + countNewlines(body.slice(0, i)),
            'bad substitution: write ${NAME} or ${NAME:-default}, or \\$ for a literal "$"',
          )
          return BAD_VALUE
        }
      }
      out += ch
      i += 1
    }
    return out
  }

  /** The value of NAME: earlier in this file, then outside it; undefined names expand to "" (with a warning). */
  private resolve(name: string, fallback: string | undefined, line: number): string {
    const value = this.defined.get(name)?.value ?? this.lookup(name)
    if (value !== undefined && (value !== '' || fallback === undefined)) return value
    if (fallback !== undefined) return fallback
    // Keys may hold "-", so ${X-y} names the key "X-y"; a shell user probably meant a default.
    const hint = name.includes('-') ? ` (for a default value write \${${name.replace('-', ':-')}})` : ''
    this.warn(line, `$${name} is not defined above or in the environment; it expands to ""${hint}`)
    return ''
  }

  /** After a closing quote only blanks, or blanks and a comment, may follow on that line. */
  private endOfValue(): boolean {
    const blanks = this.skipBlanks()
    const ch = this.src[this.pos]
    if (ch === undefined || ch === '\n' || (ch === '#' && blanks > 0)) return true
    this.error(this.line, 'unexpected text after the closing quote; only a " #comment" may follow a quoted value')
    return false
  }

  private record(entry: EnvEntry): void {
    // Refused here, at file:line, rather than by spawn's own error when a process starts.
    if (entry.value.includes('\0')) {
      this.error(entry.line, `the value of ${entry.key} holds a NUL byte, which no process environment can carry`)
      return
    }
    const bytes = Buffer.byteLength(entry.key) + Buffer.byteLength(entry.value) + 2
    if (bytes > MAX_ENV_VAR_BYTES) {
      this.error(entry.line, `${entry.key} takes ${bytes} bytes; a variable may take at most ${MAX_ENV_VAR_BYTES} with its name (keep files out of the environment)`)
      return
    }
    const previous = this.defined.get(entry.key)
    if (previous) {
      this.warn(entry.line, `${entry.key} is set again (first at ${this.file}:${previous.line}); the later value wins`)
    }
    this.defined.set(entry.key, {value: entry.value, line: entry.line})
    this.entries.push(entry)
  }

  private unterminated(key: string, quote: string, entryLine: number): typeof UNTERMINATED {
    this.error(entryLine, `unterminated ${quote} quote in the value of ${key}; close it with ${quote}`)
    return UNTERMINATED
  }

  private fail(line: number, message: string): 'next' {
    this.error(line, message)
    return this.nextLine()
  }

  private error(line: number, message: string): void {
    this.problems.push({file: this.file, line, severity: 'error', message})
  }

  private warn(line: number, message: string): void {
    this.problems.push({file: this.file, line, severity: 'warning', message})
  }

  /**
   * Bytes that are not UTF-8 were read as U+FFFD, so a value holding them is not the one written.
   * A warning, not an error: U+FFFD may also have been written on purpose. The text is not shown.
   */
  private warnNonUtf8(): void {
    if (!this.src.includes('\uFFFD')) return
    for (const [index, text] of this.src.split('\n').entries()) {
      if (text.includes('\uFFFD')) this.warn(index + 1, 'holds bytes that are not valid UTF-8 (they read as U+FFFD); save the file as UTF-8')
    }
  }

  /** Skips spaces and tabs; returns how many. */
  private skipBlanks(): number {
    const from = this.pos
    while (this.src[this.pos] === ' ' || this.src[this.pos] === '\t') this.pos += 1
    return this.pos - from
  }

  /** Moves past the rest of the current line and its newline. */
  private nextLine(): 'next' {
    const end = this.src.indexOf('\n', this.pos)
    this.pos = end === -1 ? this.src.length : end + 1
    if (end !== -1) this.line += 1
    return 'next'
  }

  private advanceTo(pos: number): void {
    this.line += countNewlines(this.src.slice(this.pos, pos))
    this.pos = pos
  }

}

function countNewlines(text: string): number {
  let count = 0
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) count += 1
  return count
}
