import {mkdir, readdir, readFile, rename, rm} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import {isDevError} from '../runtime/dev-error.js'
import {extractSlug} from '../slug/extract-slug.js'

import {writeFileAtomic} from '../runtime/atomic-write.js'
import {ENV_KEY} from '../runtime/env-file.js'
import {agentPaths} from './agent-home.js'
import {AppError} from './app-error.js'
import {collectReleaseDirs, collectSlugs, diskUsage, releasesToKeep} from './release-gc.js'
import {ReleaseLedger, type Release} from './release-ledger.js'

/** App names as Heroku allows them: lower-case letters, digits and dashes, starting with a letter. */
export const APP_NAME = /^[a-z][a-z0-9-]{1,29}$/

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
    return readConfig((await this.existing(name)).config)
  }

  /**
   * Sets (a string) or unsets (null) config vars, and records a release "Set A, B config vars"
   * with the new config. Keys are checked first, so a bad request changes nothing.
   */
  async patchConfig(name: string, changes: Record<string, string | null>, user: string): Promise<{config: Record<string, string>; release: Release}> {
    const bad = Object.keys(changes).find((key) => !ENV_KEY.test(key))
    if (bad !== undefined) throw new AppError(422, `invalid config var name "${bad}": letters, digits, "_", "." and "-", not starting with a digit`)
    const app = await this.existing(name)
    const config = await readConfig(app.config)
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

  /** Deploys a slug the host has: a release "Deploy abc1234" with the current config. */
  async deploy(name: string, slug: {sha256: string; path: string}, user: string): Promise<Release> {
    const config = await this.config(name)
    return this.release(name, slug.path, {slug: slug.sha256, config, description: `Deploy ${slug.sha256.slice(0, 7)}`, user})
  }

  /** A new release with the slug and config of vK; the app's config becomes vK's again. */
  async rollback(name: string, to: number, slugPath: (sha256: string) => string, user: string): Promise<Release> {
    await this.existing(name)
    const target = await this.ledger(name).get(to)
    if (target === undefined) throw new AppError(404, `app ${name} has no release v${to}`)
    if (target.slug === null) throw new AppError(422, `v${to} has no slug to roll back to`)
    const release = await this.release(name, slugPath(target.slug), {slug: target.slug, config: target.config, description: `Rollback to v${to}`, user})
    await writeFileAtomic(this.paths.app(name).config, `${JSON.stringify(target.config, null, 2)}\n`, 0o600)
    return release
  }

  /**
   * Extracts the slug for the next release first, then records the release, then moves the
   * extracted slug to releases/vN: a slug that cannot be extracted leaves no release behind.
   */
  private async release(name: string, slugPath: string, entry: Omit<Release, 'v' | 'created_at'>): Promise<Release> {
    const app = this.paths.app(name)
    const staging = join(app.dir, 'releases', `.incoming-${process.pid}-${Date.now()}`)
    try {
      await extractSlug(slugPath, staging)
    } catch (error) {
      await rm(staging, {recursive: true, force: true})
      if (isDevError(error)) throw new AppError(422, error.message)
      throw error
    }
    const release = await this.ledger(name).append(entry)
    const target = app.releaseDir(release.v)
    await mkdir(dirname(target), {recursive: true})
    await rm(target, {recursive: true, force: true})
    await rename(staging, target)
    return release
  }

  /**
   * After a release: removes the extracted slugs of each app's older releases, then the slugs no
   * app keeps (never the current or the previous release's).
   */
  async collectGarbage(slugsDir: string): Promise<void> {
    const keptSlugs = new Set<string>()
    for (const name of await this.list()) {
      const kept = releasesToKeep(await this.ledger(name).list())
      for (const release of kept) if (release.slug) keptSlugs.add(release.slug)
      await collectReleaseDirs(join(this.paths.app(name).dir, 'releases'), kept)
    }
    await collectSlugs(slugsDir, keptSlugs)
  }

  /** Bytes each app uses on disk (its releases, config and ledger). */
  async diskUsage(): Promise<{name: string; disk_bytes: number}[]> {
    const apps = []
    for (const name of await this.list()) apps.push({name, disk_bytes: await diskUsage(this.paths.app(name).dir)})
    return apps
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

async function readConfig(path: string): Promise<Record<string, string>> {
  return JSON.parse(await readFile(path, 'utf8')) as Record<string, string>
}
