import {createHash} from 'node:crypto'
import {createWriteStream} from 'node:fs'
import {mkdir, rename, rm, stat} from 'node:fs/promises'
import {join} from 'node:path'
import type {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {AppError} from './app-error.js'

export const SHA256 = /^[0-9a-f]{64}$/

/** Content-addressed slugs on a host: `slugs/<sha256>.tgz`, each verified against its name. */
export class SlugStore {
  readonly dir: string

  constructor(home: string) {
    this.dir = join(home, 'slugs')
  }

  path(sha256: string): string {
    return join(this.dir, `${sha256}.tgz`)
  }

  async has(sha256: string): Promise<boolean> {
    return stat(this.path(sha256)).then(
      (stats) => stats.isFile(),
      () => false,
    )
  }

  /**
   * Stores an upload under its sha256, which must match what arrived: a damaged or mislabelled
   * upload is refused and leaves nothing behind. Uploading a slug the host has is harmless.
   */
  async put(sha256: string, body: Readable, maxBytes: number): Promise<{created: boolean}> {
    if (!SHA256.test(sha256)) throw new AppError(422, `invalid slug id "${sha256}": a slug is named by its sha256 (64 hex digits)`)
    await mkdir(this.dir, {recursive: true, mode: 0o700})
    const partial = `${this.path(sha256)}.upload-${process.pid}-${Date.now()}`
    const hash = createHash('sha256')
    let size = 0
    try {
      body.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size > maxBytes) body.destroy(new AppError(413, `slug over ${maxBytes} bytes`))
        hash.update(chunk)
      })
      await pipeline(body, createWriteStream(partial, {mode: 0o600}))
      const actual = hash.digest('hex')
      if (actual !== sha256) throw new AppError(422, `the upload's sha256 is ${actual}, not ${sha256}: it was damaged on the way or mislabelled`)
      const created = !(await this.has(sha256))
      await rename(partial, this.path(sha256))
      return {created}
    } finally {
      await rm(partial, {force: true})
    }
  }
}
