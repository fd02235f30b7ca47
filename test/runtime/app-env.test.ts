import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {loadAppEnv, scanAppEnv} from '../../src/runtime/app-env.js'
import {resolveAppFiles} from '../../src/runtime/app-files.js'
import {EnvFileError} from '../../src/runtime/env-file.js'
import {tempApp} from '../support/temp-app.js'

describe('resolveAppFiles', () => {
  it('defaults to ./Procfile and ./.env in the working directory', () => {
    expect(resolveAppFiles({}, '/srv/app')).toEqual({root: '/srv/app', procfile: '/srv/app/Procfile', envFiles: ['/srv/app/.env'], explicitEnv: false, cwd: '/srv/app'})
  })

  it('takes the root from -f when -d is not given, and -d over it when it is', () => {
    expect(resolveAppFiles({procfile: 'config/Procfile.dev'}, '/srv/app')).toMatchObject({root: '/srv/app/config', procfile: '/srv/app/config/Procfile.dev'})
    expect(resolveAppFiles({procfile: 'Procfile.dev', root: 'sub'}, '/srv/app')).toMatchObject({root: '/srv/app/sub', procfile: '/srv/app/Procfile.dev'})
    expect(resolveAppFiles({root: '/other'}, '/srv/app')).toMatchObject({procfile: '/other/Procfile', envFiles: ['/other/.env']})
  })

  it('replaces .env with -e files, repeatable and comma-separated, in order', () => {
    expect(resolveAppFiles({env: ['a.env,b.env', ' c.env ']}, '/w')).toMatchObject({envFiles: ['/w/a.env', '/w/b.env', '/w/c.env'], explicitEnv: true})
  })
})

describe('loading env files', () => {
  it('reads .env from the root when it exists, and nothing when it does not', async () => {
    const withEnv = await tempApp({'.env': 'A=1\n'})
    expect([...(await loadAppEnv(resolveAppFiles({root: withEnv}))).vars]).toEqual([['A', '1']])
    const without = await tempApp({})
    const scan = await loadAppEnv(resolveAppFiles({root: without}))
    expect(scan.files).toEqual([])
    expect(scan.vars.size).toBe(0)
  })

  it('lets later files override earlier ones (Foreman F8)', async () => {
    const root = await tempApp({'one.env': 'SHARED=first\nFOO=bar\n', 'two.env': 'SHARED=second\nBAZ=qux\n'})
    const scan = await loadAppEnv(resolveAppFiles({env: ['one.env', 'two.env']}, root))
    expect(Object.fromEntries(scan.vars)).toEqual({SHARED: 'second', FOO: 'bar', BAZ: 'qux'})
    expect(scan.files.map((file) => file.path)).toEqual([join(root, 'one.env'), join(root, 'two.env')])
  })

  it('expands from earlier files, then from the inherited environment, and files win over it', async () => {
    const root = await tempApp({'one.env': 'HOST=db.local\nHOME=/from/file\n', 'two.env': 'URL=postgres://$HOST/x\nH=$HOME\nU=$USER\n'})
    const scan = await loadAppEnv(resolveAppFiles({env: ['one.env,two.env']}, root), {HOME: '/inherited', USER: 'alice', HOST: 'shell'})
    expect(Object.fromEntries(scan.vars)).toMatchObject({URL: 'postgres://db.local/x', H: '/from/file', U: 'alice'})
  })

  it('rejects a named env file that is missing, pointing at the app root copy when there is one', async () => {
    const root = await tempApp({'.env.test': 'A=1\n'})
    const error = await loadAppEnv(resolveAppFiles({env: ['.env.test'], root}, '/')).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(EnvFileError)
    expect((error as Error).message).toBe(`.env.test: env file does not exist; did you mean ${join(root, '.env.test').slice(1)}?`)
  })

  it('rejects the whole set when any file has an error (nothing half-loaded)', async () => {
    const root = await tempApp({'good.env': 'A=1\n', 'bad.env': 'B=2\nnot valid\n'})
    const error = await loadAppEnv(resolveAppFiles({env: ['good.env', 'bad.env']}, root)).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(EnvFileError)
    expect((error as EnvFileError).problems).toEqual([{file: 'bad.env', line: 2, severity: 'error', message: 'expected KEY=VALUE: no "=" after the key'}])
    const scan = await scanAppEnv(resolveAppFiles({env: ['good.env', 'bad.env']}, root))
    expect(scan.problems).toHaveLength(1)
  })
})
