import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {formatProblem} from '../../src/runtime/problem.js'
import {MAX_ENV_VAR_BYTES, scanEnvFile} from '../../src/runtime/env-file.js'
import {MAX_COMMAND_BYTES, scanProcfile} from '../../src/runtime/procfile.js'
import {runBin} from '../support/run-bin.js'
import {tempApp} from '../support/temp-app.js'

/** Bytes as the CLI reads them: a file is decoded as UTF-8, bytes that are not become U+FFFD. */
const asRead = (bytes: Buffer) => bytes.toString('utf8')
const MB = 1024 * 1024
const manyTypes = (count: number) => Array.from({length: count}, (_, i) => `p${i}: echo ${i}`).join('\n') + '\n'

/**
 * Hostile Procfiles: each row is the input and what `scanProcfile` must make of it, as the lines
 * `dev check` prints (`file:line: message`), or the number of types when it is accepted.
 */
const PROCFILES: {name: string; text: string; problems?: (string | RegExp)[]; types?: number}[] = [
  {name: 'a 2 MB command on one line', text: `web: echo ${'x'.repeat(2 * MB)}\n`, problems: [`Procfile:1: the command of "web" is ${2 * MB + 5} bytes; a command may take at most ${MAX_COMMAND_BYTES} (put a long one in a script)`]},
  {name: 'a command just under the limit', text: `web: ${'x'.repeat(MAX_COMMAND_BYTES)}\n`, problems: [], types: 1},
  {name: 'a command one byte over the limit', text: `web: ${'x'.repeat(MAX_COMMAND_BYTES + 1)}\n`, problems: [/^Procfile:1: the command of "web" is 131072 bytes; a command may take at most 131071/]},
  {name: 'a 2 MB line that is no entry (quoted back cut short)', text: `${'x'.repeat(2 * MB)}\n`, problems: [`Procfile:1: expected NAME: COMMAND, got "${'x'.repeat(60)}…"`]},
  {name: 'a 2 MB name', text: `${'w'.repeat(2 * MB)}: run\n`, problems: [], types: 1},
  {name: 'a NUL byte in a command', text: 'web: echo a\0b\nworker: run\n', problems: ['Procfile:1: the command of "web" holds a NUL byte, which no command can carry; remove it']},
  {name: 'a NUL byte in a name', text: 'w\0eb: echo\n', problems: ['Procfile:1: invalid process name "w\\u0000eb": use letters, digits, "_" and "-"']},
  {name: 'a file of NUL bytes', text: '\0'.repeat(1000), problems: [/^Procfile:1: expected NAME: COMMAND, got "(\\u0000){60}…"$/]},
  {
    name: 'invalid UTF-8 in a command (read as U+FFFD)',
    text: asRead(Buffer.concat([Buffer.from('web: echo '), Buffer.from([0xff, 0xfe, 0xc0]), Buffer.from('\nworker: run\n')])),
    problems: ['Procfile:1: holds bytes that are not valid UTF-8 (shown as "\uFFFD"); save the Procfile as UTF-8'],
  },
  {name: 'a Latin-1 name', text: asRead(Buffer.from('caf\xe9: run\n', 'latin1')), problems: [/^Procfile:1: holds bytes that are not valid UTF-8/]},
  {
    name: 'a UTF-16 file (with its BOM)',
    text: asRead(Buffer.from('\ufeffweb: run\n', 'utf16le')),
    problems: [/^Procfile:1: holds bytes that are not valid UTF-8/, 'Procfile:2: expected NAME: COMMAND, got "\\u0000"'],
  },
  {name: '10,000 process types', text: manyTypes(10_000), problems: [], types: 10_000},
  {name: '10,000 copies of one type: one error each, naming the first', text: 'web: run\n'.repeat(10_000), types: 1},
  {name: 'only carriage returns (blank)', text: '\r'.repeat(10_000), problems: ['Procfile: no processes defined; add a line such as "web: node server.js"']},
  {name: '100,000 blank lines and no entry', text: '\n'.repeat(100_000), problems: ['Procfile: no processes defined; add a line such as "web: node server.js"']},
  {name: 'terminal escapes in a name', text: '\u001b[2Jweb: run\n', problems: ['Procfile:1: invalid process name "\\u001b[2Jweb": use letters, digits, "_" and "-"']},
]

/** Hostile env files: what `scanEnvFile` must report (errors and warnings), and the values it keeps. */
const ENV_FILES: {name: string; text: string; problems: (string | RegExp)[]; values?: Record<string, number | string>}[] = [
  {name: 'a 1 MB value', text: `BIG=${'v'.repeat(MB)}\nOK=1\n`, problems: [`.env:1: BIG takes ${MB + 5} bytes; a variable may take at most ${MAX_ENV_VAR_BYTES} with its name (keep files out of the environment)`], values: {OK: '1'}},
  {name: 'a value at the limit', text: `BIG=${'v'.repeat(MAX_ENV_VAR_BYTES - 5)}\n`, problems: [], values: {BIG: MAX_ENV_VAR_BYTES - 5}},
  {name: 'a value one byte over the limit', text: `BIG='${'v'.repeat(MAX_ENV_VAR_BYTES - 4)}'\n`, problems: [/^\.env:1: BIG takes 131073 bytes/]},
  {name: 'a value that grows over the limit by expansion', text: `A=${'v'.repeat(70_000)}\nB=$A$A\n`, problems: [/^\.env:2: B takes 140003 bytes/], values: {A: 70_000}},
  {name: 'a NUL byte in a value', text: 'A="a\0b"\nB=c\0d\nC=ok\n', problems: ['.env:1: the value of A holds a NUL byte, which no process environment can carry', '.env:2: the value of B holds a NUL byte, which no process environment can carry'], values: {C: 'ok'}},
  {name: 'a NUL byte in a key (never quoted back: the line may be a secret)', text: 'A\0B=1\n', problems: ['.env:1: invalid key: a key starts with a letter or "_" and holds letters, digits, "_", "." and "-"']},
  {
    name: 'invalid UTF-8 in a value: a warning, the value kept as read',
    text: asRead(Buffer.concat([Buffer.from('PASSWORD=s3cr'), Buffer.from([0xe9]), Buffer.from('t\nOK=1\n')])),
    problems: ['.env:1: warning: holds bytes that are not valid UTF-8 (they read as U+FFFD); save the file as UTF-8'],
    values: {PASSWORD: 's3cr\uFFFDt', OK: '1'},
  },
  {name: 'a 2 MB line with no "="', text: `${'K'.repeat(2 * MB)}\n`, problems: ['.env:1: expected KEY=VALUE: no "=" after the key']},
  {name: 'an unterminated quote over 1 MB of lines', text: `A="${'x\n'.repeat(MB / 2)}`, problems: ['.env:1: unterminated " quote in the value of A; close it with "']},
  {name: '100,000 keys', text: Array.from({length: 100_000}, (_, i) => `K${i}=${i}`).join('\n'), problems: [], values: {K0: '0', K99999: '99999'}},
  {name: '10,000 nested expansions', text: Array.from({length: 10_000}, (_, i) => (i === 0 ? 'A0=x' : `A${i}=\${A${i - 1}}`)).join('\n'), problems: [], values: {A9999: 'x'}},
]

describe('hostile Procfiles', () => {
  it.each(PROCFILES)('$name', ({text, problems, types}) => {
    const scan = scanProcfile(text, 'Procfile')
    const lines = scan.problems.map(formatProblem)
    if (problems !== undefined) expect(lines).toEqual(problems.map((p) => (typeof p === 'string' ? p : expect.stringMatching(p))))
    if (types !== undefined) expect(scan.types).toHaveLength(types)
    for (const line of lines) {
      expect(line).not.toMatch(/\n/)
      expect(line.length).toBeLessThan(500)
    }
  })

  it('10,000 copies of one type are 9,999 errors, each naming the first', () => {
    const {problems} = scanProcfile('web: run\n'.repeat(10_000), 'Procfile')
    expect(problems).toHaveLength(9999)
    expect(formatProblem(problems.at(-1)!)).toBe('Procfile:10000: duplicate process type "web" (also defined at Procfile:1); rename or remove one')
  })
})

describe('hostile env files', () => {
  it.each(ENV_FILES)('$name', ({text, problems, values = {}}) => {
    const scan = scanEnvFile(text, '.env')
    const lines = scan.problems.map(formatProblem)
    expect(lines).toEqual(problems.map((p) => (typeof p === 'string' ? p : expect.stringMatching(p))))
    const read = new Map(scan.entries.map((entry) => [entry.key, entry.value]))
    for (const [key, value] of Object.entries(values)) {
      if (typeof value === 'number') expect(read.get(key)).toHaveLength(value)
      else expect(read.get(key)).toBe(value)
    }
    for (const line of lines) {
      expect(line).not.toMatch(/\n/)
      expect(line.length).toBeLessThan(300)
    }
  })
})

/** A one-line answer with no stack trace: what a user sees for a refusal. */
function expectOneLineError(stderr: string, pattern: RegExp, lines = 1) {
  expect(stderr.trimEnd()).toMatch(pattern)
  expect(stderr).not.toMatch(/^\s+at /m)
  expect(stderr.trimEnd().split('\n')).toHaveLength(lines)
}

/** Writes `files` (text or raw bytes) into a fresh app directory. */
async function appWith(files: Record<string, string | Buffer>): Promise<string> {
  const root = await tempApp()
  for (const [path, content] of Object.entries(files)) await writeFile(join(root, path), content)
  return root
}

/**
 * The real `dev` executable on hostile apps: each row names the input, the command, and the exit
 * status and the one line it must print (no stack trace, file:line where there is a line).
 */
const CLI: {name: string; files: Record<string, string | Buffer>; args: string[]; status: number; stderr: RegExp; stdout?: RegExp; lines?: number}[] = [
  {name: 'dev check: a 2 MB Procfile line', files: {Procfile: `web: echo $PORT ${'x'.repeat(2 * MB)}\n`}, args: ['check'], status: 1, stderr: /^Procfile:1: the command of "web" is \d+ bytes; a command may take at most 131071/},
  {name: 'dev start: a 2 MB Procfile line (not a spawn E2BIG)', files: {Procfile: `web: echo ${'x'.repeat(2 * MB)}\n`}, args: ['start'], status: 1, stderr: /^Procfile:1: the command of "web" is \d+ bytes/},
  {name: 'dev check: a NUL byte in the Procfile', files: {Procfile: 'web: echo $PORT\0\n'}, args: ['check'], status: 1, stderr: /^Procfile:1: the command of "web" holds a NUL byte/},
  {name: 'dev start: a NUL byte in the Procfile (not a spawn TypeError)', files: {Procfile: 'web: echo a\0b\n'}, args: ['start'], status: 1, stderr: /^Procfile:1: the command of "web" holds a NUL byte/},
  // dev run needs no Procfile: its errors are warnings, and "web" is then run as a program.
  {name: 'dev run: a NUL byte in the Procfile', files: {Procfile: 'web: echo a\0b\n'}, args: ['run', 'web'], status: 127, stderr: /^warning: Procfile:1: the command of "web" holds a NUL byte, which no command can carry; remove it\n.*web: not found$/, lines: 2},
  {name: 'dev check: invalid UTF-8 in the Procfile', files: {Procfile: Buffer.from('web: echo $PORT \xff\n', 'latin1')}, args: ['check'], status: 1, stderr: /^Procfile:1: holds bytes that are not valid UTF-8/},
  {name: 'dev check: a NUL byte in a .env value', files: {Procfile: 'web: echo $PORT\n', '.env': 'A="a\0b"\n'}, args: ['check'], status: 1, stderr: /^\.env:1: the value of A holds a NUL byte/},
  {name: 'dev start: a NUL byte in a .env value', files: {Procfile: 'web: echo hi\n', '.env': 'A="a\0b"\n'}, args: ['start'], status: 1, stderr: /^\.env:1: the value of A holds a NUL byte/},
  {name: 'dev check: invalid UTF-8 in .env (a warning, still valid)', files: {Procfile: 'web: echo $PORT\n', '.env': Buffer.from('A=caf\xe9\n', 'latin1')}, args: ['check'], status: 0, stderr: /^\.env:1: warning: holds bytes that are not valid UTF-8/, stdout: /^valid procfile detected \(web\)\n$/},
  {name: 'dev check: a 1 MB .env value', files: {Procfile: 'web: echo $PORT\n', '.env': `BIG=${'v'.repeat(MB)}\n`}, args: ['check'], status: 1, stderr: /^\.env:1: BIG takes 1048581 bytes; a variable may take at most 131072/},
  {name: 'dev start: a 1 MB .env value (not a spawn E2BIG)', files: {Procfile: 'web: echo hi\n', '.env': `BIG=${'v'.repeat(MB)}\n`}, args: ['start'], status: 1, stderr: /^\.env:1: BIG takes 1048581 bytes/},
  {name: 'dev check: 10,000 process types', files: {Procfile: manyTypes(10_000).replace('p0: echo 0', 'web: echo $PORT')}, args: ['check'], status: 0, stderr: /^$/, stdout: /^valid procfile detected \(web, p1, p2, .*, p9999\)\n$/},
  {name: 'dev start: 10,000 process types (ports run out)', files: {Procfile: manyTypes(10_000)}, args: ['start'], status: 2, stderr: /^error: p606\.1 would get port 65600, above 65535; pass a lower --port$/},
  {name: 'dev start -m with an unknown type among 10,000 (the list cut short)', files: {Procfile: manyTypes(10_000)}, args: ['start', '-m', 'nope=1'], status: 2, stderr: /^error: unknown process type "nope"; the Procfile defines: p0, p1, .*, p19, … \(10000 in all\)$/},
  {name: 'dev start -m all=101', files: {Procfile: 'web: echo hi\n'}, args: ['start', '-m', 'all=101'], status: 2, stderr: /^error: bad count "101" for all: use a whole number from 0 to 100; the Procfile defines: web$/},
  {name: 'dev start -m all=<24 digits>', files: {Procfile: 'web: echo hi\n'}, args: ['start', '-m', `all=${'9'.repeat(24)}`], status: 2, stderr: /^error: bad count "9{24}" for all: use a whole number/},
  {name: 'dev start -m all=-1', files: {Procfile: 'web: echo hi\n'}, args: ['start', '-m', 'all=-1'], status: 2, stderr: /^error: bad count "-1" for all/},
  {name: 'dev start -m all=0', files: {Procfile: 'web: echo hi\n'}, args: ['start', '-m', 'all=0'], status: 2, stderr: /^error: the formation runs no processes; give a type a count above 0, as in -m web=1$/},
  {name: 'dev start -m with a newline and an escape in it', files: {Procfile: 'web: echo hi\n'}, args: ['start', '-m', 'web=1,\u001b[2J\nx'], status: 2, stderr: /^error: bad formation "\\u001b\[2J\\nx": write NAME=COUNT/},
  {name: 'dev start -m with a 100 kB spec', files: {Procfile: 'web: echo hi\n'}, args: ['start', '-m', `web${'='.repeat(100_000)}`], status: 2, stderr: /^error: bad count "={60}…" for web: use a whole number/},
]

describe('hostile apps given to the real dev executable', () => {
  it.each(CLI)('$name', async ({files, args, status, stderr, stdout, lines}) => {
    const result = runBin(args, {cwd: await appWith(files)})
    expect(result.status).toBe(status)
    if (stderr.source === '^$') expect(result.stderr).toBe('')
    else expectOneLineError(result.stderr, stderr, lines)
    if (stdout) expect(result.stdout).toMatch(stdout)
  })
})
