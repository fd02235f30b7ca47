import {createHash, randomBytes} from 'node:crypto'
import {createWriteStream} from 'node:fs'
import {mkdir, rename, rm, stat, utimes} from 'node:fs/promises'
import {join} from 'node:path'
import type {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {hashFile} from '../slug/pack-slug.js'
import {AppError} from './app-error.js'

export const SHA256 = /^[0-9a-f]{64}$/

/**
 * Files named by the sha256 of their content, `<dir>/<sha256><ext>`, each verified against its
 * name before it gets there: a reader of `path(sha256)` always finds the whole, right file.
 */
export class BlobStore {
  constructor(
    readonly dir: string,
    /** What the files are, as error messages name them ("slug"). */
    private readonly noun: string,
    private readonly ext = '.tgz',
  ) {}

  path(sha256: string): string {
    return join(this.dir, `${sha256}${this.ext}`)
  }

  async has(sha256: string): Promise<boolean> {
    return stat(this.path(sha256)).then(
      (stats) => stats.isFile(),
      () => false,
    )
  }

  /** Marks a file as just used, so age-based collection spares it a while longer; false if absent. */
  async touch(sha256: string): Promise<boolean> {
    if (!SHA256.test(sha256)) return false
    const now = new Date()
    return utimes(this.path(sha256), now, now).then(
      () => true,
      () => false,
    )
  }

  /**
   * Stores an upload under its sha256, which must match what arrived: a damaged or mislabelled
   * upload is refused and leaves nothing behind. Uploading a file the store has is harmless.
   */
  async put(sha256: string, body: Readable, maxBytes: number): Promise<{created: boolean}> {
    this.checkName(sha256)
    await mkdir(this.dir, {recursive: true, mode: 0o700})
    // Uploads of one file may overlap: each writes a file of its own, never one another's.
    const partial = `${this.path(sha256)}.upload-${randomBytes(8).toString('hex')}`
    const hash = createHash('sha256')
    let size = 0
    try {
      body.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size > maxBytes) body.destroy(new AppError(413, `${this.noun} over ${maxBytes} bytes`))
        hash.update(chunk)
      })
      await pipeline(body, createWriteStream(partial, {mode: 0o600, flags: 'wx'}))
      const actual = hash.digest('hex')
      if (actual !== sha256) throw new AppError(422, `the upload's sha256 is ${actual}, not ${sha256}: it was damaged on the way or mislabelled`)
      return await this.moveIn(sha256, partial)
    } finally {
      await rm(partial, {force: true})
    }
  }

  /**
   * Moves a file this host made (a slug it built) into the store. It must be on the same file
   * system, so the move is one rename; its content is still checked against the name.
   */
  async adopt(sha256: string, file: string): Promise<{created: boolean}> {
    this.checkName(sha256)
    const actual = await hashFile(file)
    if (actual !== sha256) throw new Error(`${file} has sha256 ${actual}, not ${sha256}`)
    await mkdir(this.dir, {recursive: true, mode: 0o700})
    return this.moveIn(sha256, file)
  }

  /** The rename also refreshes an existing copy's time, which age-based collection goes by. */
  private async moveIn(sha256: string, file: string): Promise<{created: boolean}> {
    const created = !(await this.has(sha256))
    await rename(file, this.path(sha256))
    return {created}
  }

  private checkName(sha256: string): void {
    if (!SHA256.test(sha256)) throw new AppError(422, `invalid ${this.noun} id "${sha256}": a ${this.noun} is named by its sha256 (64 hex digits)`)
  }
}
