import {mkdtemp, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {ProcfileError, parseProcfile, readProcfile, scanProcfile} from '../../src/runtime/procfile.js'

const names = (text: string) => parseProcfile(text, 'Procfile').map((type) => type.name)
const errorsOf = (text: string) => scanProcfile(text, 'Procfile').problems.map((p) => [p.line, p.message])

describe('Procfile grammar', () => {
  it('reads NAME: COMMAND entries in file order, skipping blank and comment lines (Foreman F1)', () => {
    const text = 'alpha: ./alpha\n\nbravo:\t./bravo\nfoo_bar:\t./foo_bar\nfoo-bar:\t./foo-bar\n# baz:\t./baz\n'
    expect(parseProcfile(text, 'Procfile')).toEqual([
      {name: 'alpha', command: './alpha', line: 1},
      {name: 'bravo', command: './bravo', line: 3},
      {name: 'foo_bar', command: './foo_bar', line: 4},
      {name: 'foo-bar', command: './foo-bar', line: 5},
    ])
  })

  it('strips a leading UTF-8 BOM', () => {
    expect(names('\uFEFFweb: node s.js\n')).toEqual(['web'])
  })

  it('accepts CRLF line ends and keeps no \\r in commands', () => {
    const types = parseProcfile('web: node s.js\r\nworker: node w.js\r\n', 'Procfile')
    expect(types.map((type) => type.command)).toEqual(['node s.js', 'node w.js'])
  })

  it('skips whitespace-only lines and indented comments (heroku N10)', () => {
    expect(names('  \t \n  # process descriptions\nweb: npm run start\n')).toEqual(['web'])
  })

  it('keeps everything after the first colon, trimming trailing whitespace (N12)', () => {
    const [web] = parseProcfile('web: node s.js --bind 0.0.0.0:$PORT --url=http://localhost:3000  \t\n', 'Procfile')
    expect(web!.command).toBe('node s.js --bind 0.0.0.0:$PORT --url=http://localhost:3000')
  })

  it('allows no space after the colon', () => {
    expect(parseProcfile('web:npm start', 'Procfile')[0]!.command).toBe('npm start')
  })

  it('keeps the command verbatim: quotes, $VARs and redirections are for the shell (honcho H13)', () => {
    const [web] = parseProcfile('web: sh -c "echo $FOOBAR" >/dev/null 2>&1', 'Procfile')
    expect(web!.command).toBe('sh -c "echo $FOOBAR" >/dev/null 2>&1')
  })

  it('reads a file without a final newline (honcho H10)', () => {
    expect(names('foo: python foo.py\nbar: python bar.py')).toEqual(['foo', 'bar'])
  })

  it('keeps file order for integer-like names (a plain object would move "1" first)', () => {
    expect(names('web: a\n2: b\n1: c\nworker: d')).toEqual(['web', '2', '1', 'worker'])
  })

  it('allows a leading dash and digits in names (honcho H12)', () => {
    expect(names('-foo_bar: command\n9lives: x')).toEqual(['-foo_bar', '9lives'])
  })

  it('skips commented entries (node-foreman N5)', () => {
    expect(names('#norun: touch a\nrun: touch b\n# norun: touch c\n')).toEqual(['run'])
  })

  it('rejects a line that is not NAME: COMMAND, at its line (node-foreman N11)', () => {
    expect(errorsOf('web: npm run start\nweb; npm start\n')).toEqual([[2, 'expected NAME: COMMAND, got "web; npm start"']])
    expect(errorsOf('web: x\nnot a valid procfile line')).toEqual([[2, 'expected NAME: COMMAND, got "not a valid procfile line"']])
  })

  it('rejects names outside [A-Za-z0-9_-] (honcho H11)', () => {
    expect(errorsOf('+foo: command')[0]![1]).toMatch(/^invalid process name "\+foo"/)
    expect(errorsOf('web.1: command')[0]![1]).toMatch(/^invalid process name "web\.1"/)
  })

  it('rejects an indented entry, saying why', () => {
    expect(errorsOf('  web: node s.js')[0]![1]).toMatch(/remove the indentation/)
  })

  it('rejects a space before the colon', () => {
    expect(errorsOf('web : node s.js')[0]![1]).toMatch(/^expected NAME: COMMAND/)
  })

  it('rejects an entry with an empty command', () => {
    expect(errorsOf('web:   \nworker: x')).toEqual([[1, 'process "web" has no command; write it after the colon, as in "web: npm start"']])
  })

  it('rejects a duplicate name, naming both lines (honcho H14)', () => {
    expect(errorsOf('web: a\nworker: b\nweb: c')).toEqual([[3, 'duplicate process type "web" (also defined at Procfile:1); rename or remove one']])
  })

  it('treats names as case-sensitive', () => {
    expect(names('web: a\nWeb: b')).toEqual(['web', 'Web'])
  })

  it('reports every bad line, not just the first', () => {
    expect(errorsOf('a b\nweb: x\nc d\n').map(([line]) => line)).toEqual([1, 3])
  })

  it('rejects a file with no entries: "no processes defined" (Foreman F2, node-foreman N2)', () => {
    for (const text of ['', '\n', ' \n \n', '# only a comment\n']) {
      expect(errorsOf(text)).toEqual([[null, 'no processes defined; add a line such as "web: node server.js"']])
    }
  })

  it('parseProcfile throws a ProcfileError carrying every problem', () => {
    let thrown: unknown
    try {
      parseProcfile('bad line\nweb: x\nweb: y', 'Procfile')
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(ProcfileError)
    const error = thrown as ProcfileError
    expect(error.problems.map((p) => p.line)).toEqual([1, 3])
    expect(error.message).toBe(
      'Procfile:1: expected NAME: COMMAND, got "bad line"\nProcfile:3: duplicate process type "web" (also defined at Procfile:2); rename or remove one',
    )
  })

  it('keeps release as an ordinary entry (dev start decides not to start it)', () => {
    expect(names('release: ./migrate\nweb: x')).toEqual(['release', 'web'])
  })
})

describe('readProcfile', () => {
  it('reads a file and reports a missing one as "Procfile does not exist: PATH"', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dev-procfile-'))
    await expect(readProcfile(join(dir, 'Procfile'))).rejects.toThrow(`Procfile does not exist: ${join(dir, 'Procfile')}`)
    await writeFile(join(dir, 'Procfile'), 'web: node s.js\n')
    expect(await readProcfile(join(dir, 'Procfile'))).toEqual([{name: 'web', command: 'node s.js', line: 1}])
  })

  it('says so when the path is a directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dev-procfile-'))
    await expect(readProcfile(dir)).rejects.toThrow(/is a directory, not a file/)
  })
})
