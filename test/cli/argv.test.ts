import {PassThrough} from 'node:stream'

import {describe, expect, it} from 'vitest'

import {colourEnabled} from '../../src/cli/colour.js'
import {withOptionalValues} from '../../src/cli/optional-value.js'
import {routerSettingChanges} from '../../src/cli/router-setting-args.js'
import {protectRunCommand, splitRunArgv} from '../../src/cli/split-run-argv.js'

const VALUE_FLAGS = ['-f', '--procfile', '-d', '--root', '-e', '--env', '-p', '--port']


describe('dev run argument splitting', () => {
  it('gives everything from the first non-flag argument to the command', () => {
    expect(splitRunArgv(['rake', 'db:migrate', '--trace'], VALUE_FLAGS)).toEqual({own: [], command: ['rake', 'db:migrate', '--trace']})
    expect(splitRunArgv(['-e', '.env.test', 'npm', 'test', '-e', 'x'], VALUE_FLAGS)).toEqual({own: ['-e', '.env.test'], command: ['npm', 'test', '-e', 'x']})
  })

  it('stops at -- and accepts attached values', () => {
    expect(splitRunArgv(['-e', '.env.test', '--', 'npm', 'test'], VALUE_FLAGS)).toEqual({own: ['-e', '.env.test'], command: ['npm', 'test']})
    expect(splitRunArgv(['--port=8000', '-dapp', '--', '--weird'], VALUE_FLAGS)).toEqual({own: ['--port=8000', '-dapp'], command: ['--weird']})
  })
})

describe('dev run and --help', () => {
  it("keeps a command's --help for the command, and dev run --help for dev", () => {
    expect(protectRunCommand(['run', 'rake', '--help'])).toEqual(['run', '--', 'rake', '--help'])
    expect(protectRunCommand(['run', '-e', 'x.env', 'rake', '-h'])).toEqual(['run', '-e', 'x.env', '--', 'rake', '-h'])
    expect(protectRunCommand(['run', '--help'])).toEqual(['run', '--help'])
    expect(protectRunCommand(['run', '--', 'npm', 'test'])).toEqual(['run', '--', 'npm', 'test'])
    expect(protectRunCommand(['start', '--help'])).toEqual(['start', '--help'])
    expect(protectRunCommand(['run', 'echo', 'a', '--help', '--', 'b'])).toEqual(['run', '--', 'echo', 'a', '--help', '--', 'b'])
  })
})

describe('optional flag values', () => {
  it('fills in a bare --restart or --watch, and leaves attached values and the command alone', () => {
    const defaults = {restart: 'on-failure', watch: '(root)'}
    expect(withOptionalValues(['--restart', 'web'], defaults)).toEqual(['--restart=on-failure', 'web'])
    expect(withOptionalValues(['--restart=always', '--watch=src'], defaults)).toEqual(['--restart=always', '--watch=src'])
    expect(withOptionalValues(['--watch', '--', '--restart'], defaults)).toEqual(['--watch=(root)', '--', '--restart'])
  })
})

describe('colour choice', () => {
  const tty = Object.assign(new PassThrough(), {isTTY: true})
  const file = new PassThrough()

  it('follows --color always/never over everything', () => {
    expect(colourEnabled('always', file, {NO_COLOR: '1'})).toBe(true)
    expect(colourEnabled('never', tty, {FORCE_COLOR: '1'})).toBe(false)
  })

  it('colours a TTY only, unless NO_COLOR or FORCE_COLOR say otherwise', () => {
    expect(colourEnabled('auto', tty, {})).toBe(true)
    expect(colourEnabled('auto', file, {})).toBe(false)
    expect(colourEnabled('auto', tty, {NO_COLOR: '1'})).toBe(false)
    expect(colourEnabled('auto', file, {FORCE_COLOR: '1'})).toBe(true)
    expect(colourEnabled('auto', tty, {FORCE_COLOR: '0'})).toBe(false)
  })
})

describe('dev router set arguments', () => {
  it('reads durations in ms, s (the default unit) and m, and default as null', () => {
    expect(routerSettingChanges(['request-timeout=500ms', 'idle-timeout=2m'])).toEqual({request_timeout_seconds: 0.5, idle_timeout_seconds: 120})
    expect(routerSettingChanges(['request-timeout=45'])).toEqual({request_timeout_seconds: 45})
    expect(routerSettingChanges(['idle-timeout=default'])).toEqual({idle_timeout_seconds: null})
    // Whole milliseconds: no binary fraction noise reaches the agent, the log or the display.
    expect(routerSettingChanges(['request-timeout=2300ms'])).toEqual({request_timeout_seconds: 2.3})
    expect(routerSettingChanges(['request-timeout=1h', 'idle-timeout=0.5m'])).toEqual({request_timeout_seconds: 3600, idle_timeout_seconds: 30})
    expect(routerSettingChanges(['request-timeout= 30S ', 'idle-timeout=Default'])).toEqual({request_timeout_seconds: 30, idle_timeout_seconds: null})
  })

  it('names each mistake in the words it was given', () => {
    expect(() => routerSettingChanges([])).toThrow('say what to set: dev router set request-timeout=DURATION idle-timeout=DURATION (or =default)')
    expect(() => routerSettingChanges(['request-timeout'])).toThrow('request-timeout needs a value: request-timeout=60s (or request-timeout=default)')
    expect(() => routerSettingChanges(['idle-timeout=5', 'idle-timeout=6'])).toThrow('idle-timeout is given twice')
    expect(() => routerSettingChanges(['request-timeout=61m'])).toThrow('request-timeout=61m is out of range; give at least 1ms and at most 1h')
    expect(() => routerSettingChanges(['request-timeout=0.0001s'])).toThrow('request-timeout=0.0001s is out of range')
    expect(() => routerSettingChanges(['request-timeout=0.5ms'])).toThrow('request-timeout=0.5ms is out of range; give at least 1ms and at most 1h')
    expect(() => routerSettingChanges(['idle-timeout=0s'])).toThrow('idle-timeout=0s is out of range; give at least 1s and at most 1h')
    // Names an object has of its own (constructor, toString) are not settings.
    expect(() => routerSettingChanges(['constructor=5'])).toThrow('"constructor" is not a router setting; give request-timeout or idle-timeout')
    expect(() => routerSettingChanges(['request-timeout=-1s'])).toThrow('request-timeout=-1s is not a duration')
    expect(() => routerSettingChanges(['idle-timeout=1500ms'])).toThrow('idle-timeout=1500ms is not whole seconds')
  })
})
