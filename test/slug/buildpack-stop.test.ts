import {mkdir, mkdtemp, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {compile} from '../../src/slug/buildpack.js'
import {processAlive} from '../support/processes.js'

describe('stopping a compile step', () => {
  it('kills what ignores SIGTERM after the grace, so an aborted build leaves no process', async () => {
    const work = await mkdtemp(join(tmpdir(), 'dev-bp-stop-'))
    const dir = join(work, 'bp')
    await mkdir(join(dir, 'bin'), {recursive: true})
    // The step starts a child that ignores SIGTERM, then waits.
    await writeFile(join(dir, 'bin', 'compile'), '#!/bin/sh\nsh -c \'trap "" TERM; while :; do sleep 0.1; done\' &\necho "stubborn $!"\nwait\n', {mode: 0o755})
    for (const sub of ['build', 'cache', 'env']) await mkdir(join(work, sub))
    const abort = new AbortController()
    let stubborn = 0
    const step = compile({name: 'bp', dir}, {build: join(work, 'build'), cache: join(work, 'cache'), env: join(work, 'env')}, {
      env: {PATH: process.env.PATH},
      signal: abort.signal,
      onLine: (line) => {
        if (line.startsWith('stubborn ')) {
          stubborn = Number(line.split(' ')[1])
          abort.abort()
        }
      },
    })
    await expect(step).rejects.toThrow()
    expect(stubborn).toBeGreaterThan(0)
    expect(processAlive(stubborn)).toBe(false)
  }, 20_000)
})
