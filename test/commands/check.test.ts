import {runCommand} from '@oclif/test'
import {describe, expect, it} from 'vitest'

import {tempApp} from '../support/temp-app.js'

const root = new URL('../..', import.meta.url).pathname

describe('dev check', () => {
  it('prints "valid procfile detected (...)" on stdout with the types in file order', async () => {
    const app = await tempApp({Procfile: 'web: node s.js --port $PORT\n1: echo one\nworker: node w.js\n'})
    const {stdout, stderr, error} = await runCommand(['check', '-d', app], {root})
    expect(error).toBeUndefined()
    expect(stdout).toBe('valid procfile detected (web, 1, worker)\n')
    expect(stderr).toBe('')
  })

  it('lists problems as FILE:LINE: message on stderr and exits 1 on an error', async () => {
    const app = await tempApp({Procfile: 'web: x --port $PORT\nweb; npm start\n'})
    const {stdout, stderr, error} = await runCommand(['check', '--procfile', `${app}/Procfile`], {root})
    expect(error?.oclif?.exit).toBe(1)
    expect(stdout).toBe('')
    expect(stderr).toContain(`${app}/Procfile:2: expected NAME: COMMAND, got "web; npm start"`)
  })

  it('exits 0 with only warnings, and still prints the success line', async () => {
    const app = await tempApp({Procfile: 'web: node s.js\n'})
    const {stdout, stderr, error} = await runCommand(['check', '-d', app], {root})
    expect(error).toBeUndefined()
    expect(stdout).toBe('valid procfile detected (web)\n')
    expect(stderr).toMatch(/Procfile:1: warning: web does not mention \$PORT/)
  })

  it('--json prints the report with the same exit code', async () => {
    const app = await tempApp({Procfile: 'web: x $PORT\n', '.env': 'A=1\nbroken\n'})
    const {stdout, error} = await runCommand(['check', '-d', app, '--json'], {root})
    expect(error?.oclif?.exit).toBe(1)
    const report = JSON.parse(stdout)
    expect(report).toEqual({
      valid: false,
      processes: [{name: 'web', command: 'x $PORT', line: 1}],
      env_files: [`${app}/.env`],
      problems: [{file: `${app}/.env`, line: 2, severity: 'error', message: 'expected KEY=VALUE: no "=" after the key'}],
    })
  })

  it('reads -e files instead of .env, comma-separated or repeated', async () => {
    const app = await tempApp({Procfile: 'web: x $PORT\n', '.env': 'bad\n', 'a.env': 'A=1\n', 'b.env': 'B=$A\n', 'c.env': 'C=1\n'})
    const {stdout, error} = await runCommand(['check', '-d', app, '-e', `${app}/a.env,${app}/b.env`, '-e', `${app}/c.env`, '--json'], {root})
    expect(error).toBeUndefined()
    expect(JSON.parse(stdout).env_files).toEqual([`${app}/a.env`, `${app}/b.env`, `${app}/c.env`])
  })

  it('is reachable as a topic-separated help page with examples', async () => {
    const {stdout} = await runCommand(['help', 'check'], {root})
    expect(stdout).toContain('EXAMPLES')
    expect(stdout).toContain('$ dev check --json')
  })
})
