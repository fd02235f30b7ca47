import {execFileSync} from 'node:child_process'
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {resolveAppFiles} from '../../src/runtime/app-files.js'
import {checkApp} from '../../src/runtime/check.js'
import {tempApp} from '../support/temp-app.js'

async function check(files: Record<string, string>, options: {env?: string[]} = {}) {
  const root = await tempApp(files)
  const report = await checkApp(resolveAppFiles({root, ...options}, root), {})
  return {root, report, messages: report.problems.map((p) => `${p.file}:${p.line ?? '-'}:${p.severity}: ${p.message}`)}
}

describe('checkApp', () => {
  it('reports a valid app with its processes in file order and no problems (Foreman F3)', async () => {
    const {report} = await check({Procfile: 'alpha: ./alpha\n\nbravo:\t./bravo\nfoo_bar:\t./foo_bar\nfoo-bar:\t./foo-bar\n# baz:\t./baz\n'})
    expect(report).toEqual({
      valid: true,
      processes: [
        {name: 'alpha', command: './alpha', line: 1},
        {name: 'bravo', command: './bravo', line: 3},
        {name: 'foo_bar', command: './foo_bar', line: 4},
        {name: 'foo-bar', command: './foo-bar', line: 5},
      ],
      env_files: [],
      problems: [],
    })
  })

  it('reports a missing Procfile as an error (Foreman F4)', async () => {
    const {report, messages} = await check({})
    expect(report.valid).toBe(false)
    expect(messages).toEqual(['Procfile:-:error: does not exist; create it, or point to the Procfile with -f PATH'])
  })

  it('reports an empty Procfile as "no processes defined" (Foreman F2)', async () => {
    const {report, messages} = await check({Procfile: '\n'})
    expect(report.valid).toBe(false)
    expect(messages).toEqual(['Procfile:-:error: no processes defined; add a line such as "web: node server.js"'])
  })

  it('warns about a web command that does not mention $PORT, and not when it does', async () => {
    const {report, messages} = await check({Procfile: 'web: node server.js\nworker: node w.js\n'})
    expect(report.valid).toBe(true)
    expect(messages).toEqual([expect.stringMatching(/^Procfile:1:warning: web does not mention \$PORT/)])
    for (const command of ['node s.js --port $PORT', 'node s.js --port=${PORT}', 'bin/rails s -p $PORT -b 0.0.0.0']) {
      expect((await check({Procfile: `web: ${command}\n`})).messages).toEqual([])
    }
  })

  it('notes that a release entry runs on deploy', async () => {
    const {report, messages} = await check({Procfile: 'release: ./migrate\nworker: x\n'})
    expect(report.valid).toBe(true)
    expect(messages).toEqual([expect.stringMatching(/^Procfile:1:warning: release runs once on each deploy/)])
  })

  it('warns about Procfile.txt and a lower-case procfile, which are never read', async () => {
    const {messages} = await check({Procfile: 'worker: x\n', 'Procfile.txt': 'web: y\n', procfile: 'web: z\n'})
    expect(messages).toEqual([
      'Procfile.txt:-:warning: is not read: only a file named exactly "Procfile" is; rename it, or pass it with -f',
      'procfile:-:warning: is not read: only a file named exactly "Procfile" is; rename it, or pass it with -f',
    ])
  })

  it('does not warn about a lower-case procfile that is the one being read (-f procfile)', async () => {
    const root = await tempApp({procfile: 'worker: x\n'})
    const report = await checkApp(resolveAppFiles({procfile: 'procfile'}, root), {})
    expect(report.problems).toEqual([])
  })

  it('lists the env files it read, and their problems with file and line', async () => {
    const {report, messages} = await check({Procfile: 'worker: x\n', '.env': 'A=1\nA=2\nbad line\n'})
    expect(report.valid).toBe(false)
    expect(report.env_files).toEqual(['.env'])
    expect(messages).toEqual(['.env:2:warning: A is set again (first at .env:1); the later value wins', '.env:3:error: expected KEY=VALUE: no "=" after the key'])
  })

  it('reports a missing -e file as an error', async () => {
    const {report, messages} = await check({Procfile: 'worker: x\n'}, {env: ['.env.missing']})
    expect(report.valid).toBe(false)
    expect(messages).toEqual(['.env.missing:-:error: env file does not exist; check the -e/--env path'])
  })

  it('warns where the dotenv package would read a value differently', async () => {
    const {messages} = await check({Procfile: 'worker: x\n', '.env': 'A=plain\nB=foo#bar\nC="tab\\there"\nD=\'quoted#ok\'\n'})
    expect(messages).toEqual([
      '.env:2:warning: the dotenv package reads B differently than dev does, so an app that loads .env itself would see another value (see docs/procfile-and-env.md)',
      '.env:3:warning: the dotenv package reads C differently than dev does, so an app that loads .env itself would see another value (see docs/procfile-and-env.md)',
    ])
  })

  it('names the file in every whole-file problem', async () => {
    const {messages} = await check({Procfile: 'worker: x\n', 'Procfile.txt': ''})
    expect(messages.map((message) => message.split(':')[0])).toEqual(['Procfile.txt'])
  })

  it('warns when an env file is tracked by git, and not when it is ignored', async () => {
    const {root} = await check({Procfile: 'worker: x\n', '.env': 'SECRET=1\n', '.env.local': 'X=1\n', '.gitignore': '.env.local\n'})
    const git = (...args: string[]) => execFileSync('git', args, {cwd: root, stdio: 'ignore'})
    git('init', '-q')
    git('add', 'Procfile', '.env', '.gitignore')
    const report = await checkApp(resolveAppFiles({root, env: ['.env', '.env.local']}, root), {})
    expect(report.problems.map((p) => `${p.file}: ${p.message}`)).toEqual([
      '.env: is tracked by git, so its secrets are in source control; run "git rm --cached .env" and add it to .gitignore',
    ])
    git('rm', '-q', '--cached', '.env')
    await writeFile(join(root, '.gitignore'), '.env*\n')
    expect((await checkApp(resolveAppFiles({root}, root), {})).problems).toEqual([])
  })

  it('groups problems by file and sorts them by line', async () => {
    const {messages} = await check({Procfile: 'web: x\nbad\n'})
    expect(messages.map((m) => m.split(':').slice(0, 2).join(':'))).toEqual(['Procfile:1', 'Procfile:2'])
  })
})
