import {readFileSync} from 'node:fs'

import {describe, expect, it} from 'vitest'

import {projectRoot, runBin} from '../support/run-bin.js'
import {tempApp} from '../support/temp-app.js'

const version = JSON.parse(readFileSync(`${projectRoot}package.json`, 'utf8')).version as string

describe('the dev executable', () => {
  it('prints its version', () => {
    const result = runBin(['--version'])
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(new RegExp(`^dev/${version.replaceAll('.', '\\.')} `))
  })

  it('lists its commands in --help', () => {
    const result = runBin(['--help'])
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/^\s+check\s+Validate the Procfile and the env files$/m)
  })

  it('checks the bundled sample app', () => {
    const result = runBin(['check', '-d', 'fixtures/node-web'])
    expect(result).toEqual({status: 0, stdout: 'valid procfile detected (web, worker)\n', stderr: ''})
  })

  it('runs the TypeScript sources through bin/dev.js', () => {
    const result = runBin(['check', '-d', 'fixtures/node-web'], {bin: 'dev.js'})
    expect(result).toEqual({status: 0, stdout: 'valid procfile detected (web, worker)\n', stderr: ''})
  })

  it('reports a missing Procfile in one line, without a stack, exit 1', async () => {
    const app = await tempApp({})
    const result = runBin(['check'], {cwd: app})
    expect(result.status).toBe(1)
    expect(result.stdout).toBe('')
    expect(result.stderr).toBe('Procfile: does not exist; create it, or point to the Procfile with -f PATH\n')
  })

  it('reports an unreadable path in one line, and shows the stack only with DEBUG=dev*', async () => {
    const app = await tempApp({Procfile: 'web: x $PORT\n'})
    const plain = runBin(['check', '-d', app, '-e', app])
    expect(plain.status).toBe(1)
    expect(plain.stderr).toBe(`error: ${app} is a directory, not a file\n`)
    const debug = runBin(['check', '-d', app, '-e', app], {env: {DEBUG: 'dev*'}})
    expect(debug.status).toBe(1)
    expect(debug.stderr).toMatch(/is a directory, not a file\n[\s\S]*\n\s+at /)
  })

  it('exits 2 with one line for a usage error', () => {
    const result = runBin(['check', '--no-such-flag'])
    expect(result.status).toBe(2)
    expect(result.stderr).toBe('error: Nonexistent flag: --no-such-flag (see --help)\n')
  })

  it('says so for an unknown command', () => {
    const result = runBin(['frobnicate'])
    expect(result.status).toBe(2)
    expect(result.stderr).toMatch(/^error: command frobnicate not found/)
    expect(result.stderr.trim().split('\n')).toHaveLength(1)
  })
})
