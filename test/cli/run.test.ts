import {describe, expect, it} from 'vitest'

import {runBin} from '../support/run-bin.js'
import {spawnBin} from '../support/spawn-bin.js'
import {tempApp} from '../support/temp-app.js'

describe('dev run', () => {
  it("runs with the app's environment: env files, PORT = base port, PS=run.1, in the app root", async () => {
    const app = await tempApp({Procfile: 'web: x\n', '.env': 'FOO=bar\n'})
    const result = runBin(['run', '-d', app, 'echo $PORT $PS $DYNO $FOO $(pwd)'])
    expect(result).toEqual({status: 0, stdout: `5000 run.1 run.1 bar ${app}\n`, stderr: ''})
    expect(runBin(['run', '-d', app, '-p', '6000', 'printenv', 'PORT']).stdout).toBe('6000\n')
  })

  it('works without a Procfile', async () => {
    const app = await tempApp({'.env': 'PORT=7000\n'})
    expect(runBin(['run', '-d', app, 'printenv', 'PORT']).stdout).toBe('7000\n')
  })

  it('passes the exit status through, and 128 + N when killed by signal N', async () => {
    const app = await tempApp({})
    expect(runBin(['run', '-d', app, 'sh', '-c', 'exit 7']).status).toBe(7)
    expect(runBin(['run', '-d', app, 'kill -TERM $$']).status).toBe(143)
  })

  it('passes every argument after the command to it, flags included (Foreman F16)', async () => {
    const app = await tempApp({})
    const result = runBin(['run', '-d', app, 'printf', '%s|', 'db:migrate', '--trace', 'a b', '-e', '$HOME'])
    expect(result.stdout).toBe('db:migrate|--trace|a b|-e|$HOME|')
  })

  it('passes --help to the command, not to dev', async () => {
    const app = await tempApp({})
    expect(runBin(['run', '-d', app, 'echo', 'x', '--help']).stdout).toBe('x --help\n')
    expect(runBin(['run', '--help']).stdout).toMatch(/^Run a one-off command/)
  })

  it('appends the arguments of a Procfile type once, even when its command uses "$@"', async () => {
    const app = await tempApp({Procfile: 'migrate: echo migrating with "$@"\n'})
    expect(runBin(['run', '-d', app, 'migrate', '--trace', 'it\'s']).stdout).toBe("migrating with --trace it's\n")
  })

  it('runs a command despite an unrelated Procfile error, with a warning', async () => {
    const app = await tempApp({Procfile: 'web.1: x\nworker: echo from worker\n'})
    const result = runBin(['run', '-d', app, 'echo', 'ok'])
    expect(result).toEqual({status: 0, stdout: 'ok\n', stderr: `warning: ${app}/Procfile:1: invalid process name "web.1": use letters, digits, "_" and "-"\n`})
    expect(runBin(['run', '-d', app, 'worker']).stdout).toBe('from worker\n')
  })

  it('runs a single argument that looks like an option as a command', async () => {
    const app = await tempApp({})
    const result = runBin(['run', '-d', app, '--', '-p'])
    expect(result.status).toBe(127)
    expect(result.stderr).toContain('-p: not found')
  })

  it("takes dev's own flags before --", async () => {
    const app = await tempApp({'.env.test': 'MODE=test\n', '.env': 'MODE=dev\n'})
    expect(runBin(['run', '-d', app, '-e', `${app}/.env.test`, '--', 'printenv', 'MODE']).stdout).toBe('test\n')
  })

  it('runs a Procfile type by name, with extra arguments appended', async () => {
    const app = await tempApp({Procfile: 'greet: printf "%s|" hello\n'})
    expect(runBin(['run', '-d', app, 'greet', '--once', 'two words']).stdout).toBe('hello|--once|two words|')
  })

  it('gives the command the terminal input', async () => {
    const app = await tempApp({})
    const dev = spawnBin(['run', '-d', app, 'cat'], {stdin: 'typed input\n'})
    expect(await dev.status).toBe(0)
    expect(dev.stdout()).toBe('typed input\n')
  })

  it('forwards SIGTERM to the command and exits with its status', async () => {
    const app = await tempApp({})
    const dev = spawnBin(['run', '-d', app, `trap 'echo got TERM; exit 3' TERM; echo ready; while true; do sleep 0.05; done`])
    await dev.waitFor(/ready/)
    dev.child.kill('SIGTERM')
    expect(await dev.status).toBe(3)
    expect(dev.stdout()).toBe('ready\ngot TERM\n')
  })

  it('forwards SIGHUP, and SIGINT when not run from a terminal', async () => {
    const app = await tempApp({})
    for (const signal of ['SIGHUP', 'SIGINT'] as const) {
      const dev = spawnBin(['run', '-d', app, `trap 'echo got ${signal}; exit 4' ${signal.slice(3)}; echo ready; while true; do sleep 0.05; done`])
      await dev.waitFor(/ready/)
      dev.child.kill(signal)
      expect(await dev.status).toBe(4)
      expect(dev.stdout()).toBe(`ready\ngot ${signal}\n`)
    }
  })

  it('says so when the command does not exist, exit 127', async () => {
    const app = await tempApp({})
    const result = runBin(['run', '-d', app, 'no-such-program-x', 'arg'])
    expect(result.status).toBe(127)
    expect(result.stderr).toBe('error: command not found: no-such-program-x; is it installed and on PATH?\n')
  })

  it('asks for a command when given none, exit 2', () => {
    const result = runBin(['run'])
    expect(result.status).toBe(2)
    expect(result.stderr).toBe('error: dev run needs a command, as in "dev run rake db:migrate"\n')
  })

  it('refuses to run with a broken env file', async () => {
    const app = await tempApp({'.env': 'oops\n'})
    const result = runBin(['run', '-d', app, 'true'])
    expect(result.status).toBe(1)
    expect(result.stderr).toBe(`${app}/.env:1: expected KEY=VALUE: no "=" after the key\n`)
  })
})
