import {mkdir, readdir, readFile} from 'node:fs/promises'

import {writeFileAtomic} from '../runtime/atomic-write.js'
import {ENV_KEY} from '../runtime/env-file.js'
import {agentPaths} from './agent-home.js'
import {ReleaseLedger, type Release} from './release-ledger.js'

/** App names as Heroku allows them: lower-case letters, digits and dashes, starting with a letter. */
export const APP_NAME = /^[a-z][a-z0-9-]{1,29}$/

export class AppError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

/** The apps on this host: their config vars (config.json, 0600) and release ledgers. */
export class AppStore {
  private readonly paths: ReturnType<typeof agentPaths>
  private readonly ledgers = new Map<string, ReleaseLedger>()

  constructor(home: string) {
    this.paths = agentPaths(home)
  }

  async list(): Promise<string[]> {
    return (await readdir(this.paths.apps).catch(() => [] as string[])).filter((name) => APP_NAME.test(name)).sort()
  }

  async create(name: string): Promise<void> {
    if (!APP_NAME.test(name)) throw new AppError(422, `invalid app name "${name}": use 2-30 lower-case letters, digits and dashes, starting with a letter`)
    if ((await this.list()).includes(name)) throw new AppError(409, `app ${name} already exists`)
    const app = this.paths.app(name)
    await mkdir(app.dir, {recursive: true, mode: 0o700})
    await writeFileAtomic(app.config, '{}\n', 0o600)
  }

  async config(name: string): Promise<Record<string, string>> {
    const app = await this.existing(name)
    return JSON.parse(await readFile(app.config, 'utf8')) as Record<string, string>
  }

  /**
   * Sets (a string) or unsets (null) config vars, and records a release "Set A, B config vars"
   * with the new config. Keys are checked first, so a bad request changes nothing.
   */
  async patchConfig(name: string, changes: Record<string, string | null>, user: string): Promise<{config: Record<string, string>; release: Release}> {
    const bad = Object.keys(changes).find((key) => !ENV_KEY.test(key))
    if (bad !== undefined) throw new AppError(422, `invalid config var name "${bad}": letters, digits, "_", "." and "-", not starting with a digit`)
    const app = await this.existing(name)
    const config = {...(await this.config(name))}
    for (const [key, value] of Object.entries(changes)) {
      if (value === null) delete config[key]
      else config[key] = value
    }
    const ledger = this.ledger(name)
    const current = await ledger.current()
    const set = Object.keys(changes).filter((key) => changes[key] !== null)
    const unset = Object.keys(changes).filter((key) => changes[key] === null)
    const description = [set.length > 0 ? `Set ${set.join(', ')}` : '', unset.length > 0 ? `Unset ${unset.join(', ')}` : ''].filter(Boolean).join('; ') + ' config vars'
    const release = await ledger.append({slug: current?.slug ?? null, config, description, user})
    await writeFileAtomic(app.config, `${JSON.stringify(config, null, 2)}\n`, 0o600)
    return {config, release}
  }

  async releases(name: string): Promise<Release[]> {
    await this.existing(name)
    return this.ledger(name).list()
  }

  private ledger(name: string): ReleaseLedger {
    let ledger = this.ledgers.get(name)
    if (!ledger) {
      ledger = new ReleaseLedger(this.paths.app(name).releases)
      this.ledgers.set(name, ledger)
    }
    return ledger
  }

  private async existing(name: string) {
    if (!(await this.list()).includes(name)) throw new AppError(404, `no app named ${name}`)
    return this.paths.app(name)
  }
}
