import {describe, expect, it} from 'vitest'

import {EnvFileError, parseEnvFile, scanEnvFile, type EnvLookup} from '../../src/runtime/env-file.js'

/** The file's variables as a plain object (last assignment wins). */
function vars(text: string, lookup?: EnvLookup): Record<string, string> {
  return Object.fromEntries(parseEnvFile(text, '.env', lookup).map((entry) => [entry.key, entry.value]))
}

function problems(text: string, lookup?: EnvLookup) {
  return scanEnvFile(text, '.env', lookup).problems.map((p) => ({line: p.line, severity: p.severity, message: p.message}))
}

function errorLines(text: string): (number | null)[] {
  return problems(text)
    .filter((p) => p.severity === 'error')
    .map((p) => p.line)
}

describe('.env lines', () => {
  it('reads KEY=VALUE lines, with or without a final newline (honcho H1)', () => {
    expect(vars('FOO=bar')).toEqual({FOO: 'bar'})
    expect(vars('FOO=bar\nBAZ=qux\n')).toEqual({FOO: 'bar', BAZ: 'qux'})
  })

  it('skips blank lines, whitespace-only lines and comments (node-foreman N1, N2; godotenv G11)', () => {
    const text = '### This is a config file...\n   \n# Very important setting!\nsetting = important\n   \n# DANGER = HIGH VOLTAGE   \n    \n\t# indented comment\n# end \n'
    expect(vars(text)).toEqual({setting: 'important'})
    for (const empty of ['', '\n', ' \n \n \n', '\r\n\r\n']) expect(vars(empty)).toEqual({})
  })

  it('allows spaces around "=" and trims unquoted values (godotenv G1)', () => {
    const text = 'OPTION_A=1\nOPTION_B=2\nOPTION_C= 3\nOPTION_D =4\nOPTION_E = 5\nOPTION_F = \nOPTION_G=\nOPTION_H=1 2\n'
    expect(vars(text)).toEqual({OPTION_A: '1', OPTION_B: '2', OPTION_C: '3', OPTION_D: '4', OPTION_E: '5', OPTION_F: '', OPTION_G: '', OPTION_H: '1 2'})
  })

  it('accepts an "export " prefix without making "export" part of other keys (godotenv G2, G8)', () => {
    expect(vars("export OPTION_A=2\nexport\tOPTION_B='\\n'")).toEqual({OPTION_A: '2', OPTION_B: '\\n'})
    expect(vars('export exportFoo=2\nexportFOO=2\nexport_FOO =2\nexport.FOO= 2\nexport=3')).toEqual({
      exportFoo: '2',
      exportFOO: '2',
      export_FOO: '2',
      'export.FOO': '2',
      export: '3',
    })
  })

  it('accepts keys with dots and dashes after the first character', () => {
    expect(vars('a.b-c_D9=1\n_X=2')).toEqual({'a.b-c_D9': '1', _X: '2'})
  })

  it('strips a BOM and reads CRLF files', () => {
    expect(vars('\uFEFFA=1\r\nB="x"\r\n')).toEqual({A: '1', B: 'x'})
  })

  it('keeps values with URLs, @, =, and Unicode unchanged (Foreman F6; honcho H6; node-foreman N4, N9)', () => {
    expect(vars('URL="http://example.com/api?foo=bar&baz=1"\nM=user@domain.com\nU=⋃ñᴉ—☪ó∂ǝ\nK = base64=== \n')).toEqual({
      URL: 'http://example.com/api?foo=bar&baz=1',
      M: 'user@domain.com',
      U: '⋃ñᴉ—☪ó∂ǝ',
      K: 'base64===',
    })
    expect(vars('DATABASE_URL=postgres://user:pass@host/db?opt=val')).toEqual({DATABASE_URL: 'postgres://user:pass@host/db?opt=val'})
    expect(vars('OPTION_A=1:B')).toEqual({OPTION_A: '1:B'})
  })

  it('a repeated key: the last wins, with a warning naming both lines', () => {
    expect(vars('A=1\nB=2\nA=3')).toEqual({A: '3', B: '2'})
    expect(problems('A=1\nB=2\nA=3')).toEqual([{line: 3, severity: 'warning', message: 'A is set again (first at .env:1); the later value wins'}])
  })
})

describe('.env comments', () => {
  it('cuts an unquoted value at whitespace followed by "#" (Foreman, godotenv G6, heroku N9)', () => {
    expect(vars('FOO=bar # this is foo\nKEY2 = stripped #comment ')).toEqual({FOO: 'bar', KEY2: 'stripped'})
  })

  it('keeps a "#" that does not follow whitespace (godotenv comments.env)', () => {
    expect(vars('bar=foo#baz\nC=#hash')).toEqual({bar: 'foo#baz', C: '#hash'})
  })

  it('reads "KEY= #comment" as an empty value', () => {
    expect(vars('A= # nothing here')).toEqual({A: ''})
  })

  it('keeps "#" inside quotes and allows a comment after the closing quote (G6, N4)', () => {
    expect(vars('FOO="bar#baz" # comment\nBAR=\'bar#baz\' # comment\nbaz="foo"\t#bar\nkey="quoted#hash" ')).toEqual({
      FOO: 'bar#baz',
      BAR: 'bar#baz',
      baz: 'foo',
      key: 'quoted#hash',
    })
  })
})

describe('.env single quotes', () => {
  it('are literal: no escapes, no expansion (godotenv G3, G5)', () => {
    expect(vars("FRED='barney'\nN='\\n'\nT='foo\\tbar'\nD='foo\\$bar'\nBAR='quote $FOO'\nE=''", () => 'x')).toEqual({
      FRED: 'barney',
      N: '\\n',
      T: 'foo\\tbar',
      D: 'foo\\$bar',
      BAR: 'quote $FOO',
      E: '',
    })
  })

  it('may hold double quotes and spaces (honcho H4, H8)', () => {
    expect(vars(`A='hello"world'\nB='"surrounded"'\nC='sp ace'`)).toEqual({A: 'hello"world', B: '"surrounded"', C: 'sp ace'})
  })

  it('may span lines (godotenv G3)', () => {
    const entries = parseEnvFile("A='line 1\nline 2'\nB=after", '.env')
    expect(entries.map((e) => [e.key, e.value, e.line])).toEqual([
      ['A', 'line 1\nline 2', 1],
      ['B', 'after', 3],
    ])
  })
})

describe('.env double quotes', () => {
  it('turn \\n \\r \\t \\" \\\\ \\$ into their characters (Foreman F6, F7)', () => {
    expect(vars('A="bar\\nbaz"\nB="a\\tb\\rc"\nOTHER="escaped\\"quote"\nD="back\\\\slash"\nE="cost \\$5"')).toEqual({
      A: 'bar\nbaz',
      B: 'a\tb\rc',
      OTHER: 'escaped"quote',
      D: 'back\\slash',
      E: 'cost $5',
    })
  })

  it('keep the backslash of any other escape (C:\\Users stays as written)', () => {
    expect(vars('P="C:\\Users\\dev"\nQ="a\\qb"')).toEqual({P: 'C:\\Users\\dev', Q: 'a\\qb'})
  })

  it('may hold single quotes (honcho H4, godotenv G3)', () => {
    expect(vars(`MYVAR="hello'world"\nOPTION_I = "echo 'asd'"`)).toEqual({MYVAR: "hello'world", OPTION_I: "echo 'asd'"})
  })

  it('may span lines, and later lines keep their numbers', () => {
    const entries = parseEnvFile('A="one\ntwo\nthree"\nB=4', '.env')
    expect(entries.map((e) => [e.key, e.value, e.line])).toEqual([
      ['A', 'one\ntwo\nthree', 1],
      ['B', '4', 4],
    ])
  })

  it('a CRLF file gives LF inside a multi-line value', () => {
    expect(vars('A="one\r\ntwo"\r\n')).toEqual({A: 'one\ntwo'})
  })
})

describe('.env unquoted values', () => {
  it('treat \\$ as a literal "$" and keep other backslashes (honcho H5 differs: it unescapes \\")', () => {
    expect(vars('A=\\$HOME\nB=\\"escaped\\"\nC=a\\nb', () => '/home/x')).toEqual({A: '$HOME', B: '\\"escaped\\"', C: 'a\\nb'})
  })

  it('are not quoted by a quote in the middle', () => {
    expect(vars(`A=it's\nB=say "hi"`)).toEqual({A: "it's", B: 'say "hi"'})
  })
})

describe('.env expansion', () => {
  it('expands ${VAR} and $VAR from earlier keys (godotenv G4)', () => {
    const text = 'OPTION_A=1\nOPTION_B=${OPTION_A}\nOPTION_C=$OPTION_B\nOPTION_D=${OPTION_A}${OPTION_B}\nOPTION_E=${OPTION_NOT_DEFINED}'
    expect(vars(text)).toEqual({OPTION_A: '1', OPTION_B: '1', OPTION_C: '1', OPTION_D: '11', OPTION_E: ''})
  })

  it('expands inside double quotes but not after \\$ (godotenv G5)', () => {
    expect(vars('BAR=x\nA="foo\\$BAR"\nB="foo\\${BAR}"\nC="foo $BAR"')).toEqual({BAR: 'x', A: 'foo$BAR', B: 'foo${BAR}', C: 'foo x'})
  })

  it('looks at earlier keys of the file before the lookup (earlier files, then the environment)', () => {
    const lookup: EnvLookup = (name) => ({HOME: '/home/me', A: 'outside'})[name]
    expect(vars('X=$A\nA=inside\nY=$A\nZ=$HOME/bin', lookup)).toEqual({X: 'outside', A: 'inside', Y: 'inside', Z: '/home/me/bin'})
  })

  it('does not see keys defined later in the file', () => {
    expect(vars('A=$B\nB=1')).toEqual({A: '', B: '1'})
  })

  it('lets a key extend its inherited value (PATH=$PATH:...)', () => {
    expect(vars('PATH=$PATH:/opt/bin', (name) => (name === 'PATH' ? '/usr/bin' : undefined))).toEqual({PATH: '/usr/bin:/opt/bin'})
  })

  it('ends a bare $NAME at the first character that cannot be in a shell name', () => {
    expect(vars('A=1\nB=$A.txt\nC=${A}b\nD=$Ab', () => undefined)).toEqual({A: '1', B: '1.txt', C: '1b', D: ''})
  })

  it('supports ${VAR:-default} when VAR is unset or empty', () => {
    expect(vars('E=\nA=${NOPE:-fallback}\nB=${E:-empty}\nC=${A:-unused}')).toEqual({E: '', A: 'fallback', B: 'empty', C: 'fallback'})
  })

  it('reads ${X-y} as the key "X-y", and hints at ${X:-y}', () => {
    expect(problems('C=${X-y}')).toEqual([
      {line: 1, severity: 'warning', message: '$X-y is not defined above or in the environment; it expands to "" (for a default value write ${X:-y})'},
    ])
  })

  it('warns, and expands to "", for a variable defined nowhere', () => {
    expect(problems('A=x${TYPO}y')).toEqual([{line: 1, severity: 'warning', message: '$TYPO is not defined above or in the environment; it expands to ""'}])
    expect(vars('A=x${TYPO}y')).toEqual({A: 'xy'})
  })

  it('never executes anything: $(cmd) and backticks stay literal text', () => {
    expect(vars('A=$(echo pwned)\nB="`whoami`"\nC=`id`\nD="$(id)"')).toEqual({A: '$(echo pwned)', B: '`whoami`', C: '`id`', D: '$(id)'})
  })

  it('leaves a lone "$", "$$" and "$1" alone', () => {
    expect(vars('A=cost $\nB=$$\nC=$1\nD="a $ b"')).toEqual({A: 'cost $', B: '$$', C: '$1', D: 'a $ b'})
  })

  it('rejects a malformed ${...} at its line', () => {
    expect(problems('A=1\nB="x\n${bad name}"')).toEqual([
      {line: 3, severity: 'error', message: 'bad substitution: write ${NAME} or ${NAME:-default}, or \\$ for a literal "$"'},
    ])
    expect(errorLines('A=${unterminated')).toEqual([1])
  })
})

describe('.env errors', () => {
  it('rejects a key that does not match [A-Za-z_][A-Za-z0-9_.-]* (honcho H3, H7)', () => {
    for (const text of ['-foo=command', 'ṀẎṾẠṚ=value', '9LIVES=1']) {
      expect(problems(text)).toEqual([{line: 1, severity: 'error', message: expect.stringMatching(/^invalid key: a key starts with a letter/)}])
    }
  })

  it('rejects a line without "=" (godotenv G10)', () => {
    expect(problems('lol$wut')).toEqual([{line: 1, severity: 'error', message: 'invalid key: a key starts with a letter or "_" and holds letters, digits, "_", "." and "-"'}])
    expect(problems('FOO=1\nINVALID LINE\nfoo=bar')).toEqual([{line: 2, severity: 'error', message: 'expected KEY=VALUE: no "=" after the key'}])
    expect(problems('JUSTAKEY')).toEqual([{line: 1, severity: 'error', message: 'expected KEY=VALUE: no "=" after the key'}])
    expect(errorLines('="no key"')).toEqual([1])
  })

  it('rejects YAML-style "KEY: value", saying what to write (godotenv G7)', () => {
    expect(problems('OPTION_A: 1')).toEqual([{line: 1, severity: 'error', message: 'expected KEY=VALUE: no "=" after the key; "KEY: value" is not supported, write KEY=value'}])
  })

  it('rejects an unterminated quote at the line where it opens (godotenv G10)', () => {
    expect(problems('A=1\nfoo="bar\nB=2')).toEqual([{line: 2, severity: 'error', message: 'unterminated " quote in the value of foo; close it with "'}])
    expect(errorLines("A='open")).toEqual([1])
  })

  it('rejects text after a closing quote other than a comment', () => {
    expect(errorLines('A="q" junk\nB=\'x\'y\nC="ok"  # fine\nD="no blank"#before the comment')).toEqual([1, 2, 4])
    expect(errorLines('A="multi\nline" junk')).toEqual([2])
  })

  it('reports every bad line, then rejects the whole file (nothing half-loaded)', () => {
    const text = 'GOOD=1\nbad line\nALSO_GOOD=2\n-x=1\n'
    expect(errorLines(text)).toEqual([2, 4])
    let thrown: unknown
    try {
      parseEnvFile(text, '.env')
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(EnvFileError)
    expect((thrown as EnvFileError).message.split('\n')).toEqual([
      '.env:2: expected KEY=VALUE: no "=" after the key',
      '.env:4: invalid key: a key starts with a letter or "_" and holds letters, digits, "_", "." and "-"',
    ])
  })

  it('never prints a value in an error message', () => {
    const secret = 'sk_live_51HsecretValue'
    for (const text of [`A="${secret}" ${secret}`, `A='${secret}`, `${secret} oops`, `${secret}`, `-${secret}=1`, `MII+Ew/${secret}`]) {
      for (const problem of problems(text)) expect(problem.message).not.toContain('secretValue')
    }
  })
})
