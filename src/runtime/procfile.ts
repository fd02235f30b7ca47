import {DevError} from './dev-error.js'
import {displayPath} from './display-path.js'
import {errorsOf, formatProblem, type Problem} from './problem.js'
import {normalizeText, readTextFileIfExists} from './text-file.js'

/** One process type of a Procfile, in file order (start order and port order come from it). */
export interface ProcessType {
  name: string
  command: string
  /** 1-based line in the Procfile. */
  line: number
}

export interface ProcfileScan {
  /** Valid entries, in file order. Present even when `problems` holds errors. */
  types: ProcessType[]
  problems: Problem[]
}

/** The reserved type run once per deploy, before the new release starts. Not started by `dev start`. */
export const RELEASE_TYPE = 'release'

export const PROCESS_NAME = /^[A-Za-z0-9_-]+$/
const ENTRY = /^([^:\s]+):(.*)$/
/**
 * The longest command a process can be given: it reaches the shell as one argument, and Linux
 * refuses (E2BIG) an argument of 128 KiB or more, terminating NUL included.
 */
export const MAX_COMMAND_BYTES = 128 * 1024 - 1

/** Thrown for a Procfile that cannot be used; `problems` lists every error in it. */
export class ProcfileError extends DevError {}

/**
 * Reads Procfile text into process types and problems. Never throws: each bad line becomes a
 * problem at `file:line`, so `dev check` can report all of them at once.
 */
export function scanProcfile(text: string, file: string): ProcfileScan {
  const types: ProcessType[] = []
  const problems: Problem[] = []
  const firstLine = new Map<string, number>()
  const error = (line: number | null, message: string) => problems.push({file, line, severity: 'error', message})

  const lines = normalizeText(text).split('\n')
  for (const [index, raw] of lines.entries()) {
    const lineNumber = index + 1
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    const trimmed = line.trim()
    if (trimmed === '' || trimmed.startsWith('#')) continue
    // Bytes that are not UTF-8 were read as U+FFFD: the command would not be the one written.
    if (line.includes('\uFFFD')) {
      error(lineNumber, 'holds bytes that are not valid UTF-8 (shown as "\uFFFD"); save the Procfile as UTF-8')
      continue
    }

    const match = ENTRY.exec(line)
    if (!match) {
      const hint = /^\s/.test(line) && ENTRY.test(trimmed) ? '; remove the indentation before the name' : ''
      error(lineNumber, `expected NAME: COMMAND, got ${JSON.stringify(truncate(trimmed))}${hint}`)
      continue
    }
    const [, name, rest] = match as unknown as [string, string, string]
    if (!PROCESS_NAME.test(name)) {
      error(lineNumber, `invalid process name ${JSON.stringify(name)}: use letters, digits, "_" and "-"`)
      continue
    }
    const command = rest.trim()
    if (command === '') {
      error(lineNumber, `process "${name}" has no command; write it after the colon, as in "${name}: npm start"`)
      continue
    }
    // Caught here, at file:line, rather than by spawn's own error when the process starts.
    if (command.includes('\0')) {
      error(lineNumber, `the command of "${name}" holds a NUL byte, which no command can carry; remove it`)
      continue
    }
    const bytes = Buffer.byteLength(command)
    if (bytes > MAX_COMMAND_BYTES) {
      error(lineNumber, `the command of "${name}" is ${bytes} bytes; a command may take at most ${MAX_COMMAND_BYTES} (put a long one in a script)`)
      continue
    }
    const seen = firstLine.get(name)
    if (seen !== undefined) {
      error(lineNumber, `duplicate process type "${name}" (also defined at ${file}:${seen}); rename or remove one`)
      continue
    }
    firstLine.set(name, lineNumber)
    types.push({name, command, line: lineNumber})
  }

  if (types.length === 0 && problems.length === 0) {
    error(null, 'no processes defined; add a line such as "web: node server.js"')
  }
  return {types, problems}
}

/** Like scanProcfile, but throws a ProcfileError naming every error when there is any. */
export function parseProcfile(text: string, file: string): ProcessType[] {
  const {types, problems} = scanProcfile(text, file)
  throwIfErrors(problems)
  return types
}

/** Reads and parses the Procfile at `path` (shown to the user as `display`); a missing file is a ProcfileError. */
export async function readProcfile(path: string, display = displayPath(path)): Promise<ProcessType[]> {
  const text = await readTextFileIfExists(path)
  if (text === undefined) throw missingProcfile(display)
  return parseProcfile(text, display)
}

export function missingProcfile(display: string): ProcfileError {
  return new ProcfileError(`Procfile does not exist: ${display}; create one, or point to it with -f PATH`)
}

function throwIfErrors(problems: readonly Problem[]): void {
  const errors = errorsOf(problems)
  if (errors.length > 0) throw new ProcfileError(errors.map(formatProblem).join('\n'), {problems: errors})
}

function truncate(text: string, max = 60): string {
  return text.length > max ? `${text.slice(0, max)}…` : text
}
