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

/** What a release about to be recorded runs: its number, its extracted slug and its config. */
export interface ReleasePlan {
  v: number
  dir: string
  slug: string
  config: Record<string, string>
  sourceVersion: string | null
}

/**
 * Puts a release's dynos in place before the release is recorded (the dyno manager's switch). If
 * it throws, nothing is recorded and the release's files are removed: the app keeps running what
 * it ran.
 */
export type Activate = (plan: ReleasePlan) => Promise<void>

/** The apps on this host: their config vars (config.json, 0600) and release ledgers. */
export class AppStore {
  private readonly paths: ReturnType<typeof agentPaths>
  private readonly ledgers = new Map<string, ReleaseLedger>()
  /** Changes to one app happen one at a time, so a release's number is known before it is recorded. */
  private readonly queues = new Map<string, Promise<unknown>>()

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
  async patchConfig(name: string, changes: Record<string, string | null>, user: string, slugPath: SlugPath, activate?: Activate): Promise<{config: Record<string, string>; release: Release}> {
    const bad = Object.keys(changes).find((key) => !ENV_KEY.test(key))
    if (bad !== undefined) throw new AppError(422, `invalid config var name "${bad}": letters, digits, "_", "." and "-", not starting with a digit`)
    return this.serialised(name, async () => {
      const config = await this.config(name)
      for (const [key, value] of Object.entries(changes)) {
        if (value === null) delete config[key]
        else config[key] = value
      }
      const current = await this.ledger(name).current()
      const set = Object.keys(changes).filter((key) => changes[key] !== null)
      const unset = Object.keys(changes).filter((key) => changes[key] === null)
      const description = [set.length > 0 ? `Set ${set.join(', ')}` : '', unset.length > 0 ? `Unset ${unset.join(', ')}` : ''].filter(Boolean).join('; ') + ' config vars'
      const entry = {slug: current?.slug ?? null, source_version: current?.source_version ?? null, config, description, user}
      const release = await this.release(name, entry, slugPath, activate)
      return {config, release}
    })
  }

  /** Deploys a slug the host has: a release "Deploy abc1234" with the current config. */
  async deploy(name: string, slug: {sha256: string; sourceVersion?: string | null}, user: string, slugPath: SlugPath, activate?: Activate): Promise<Release> {
    return this.serialised(name, async () => {
      const config = await this.config(name)
      const entry = {slug: slug.sha256, source_version: slug.sourceVersion ?? null, config, description: `Deploy ${slug.sha256.slice(0, 7)}`, user}
      return this.release(name, entry, slugPath, activate)
    })
  }

  /** A new release with the slug and config of vK; the app's config becomes vK's again. */
  async rollback(name: string, to: number, user: string, slugPath: SlugPath, activate?: Activate): Promise<Release> {
    await this.existing(name)
    return this.serialised(name, async () => {
      const target = await this.ledger(name).get(to)
      if (target === undefined) throw new AppError(404, `app ${name} has no release v${to}`)
      if (target.slug === null) throw new AppError(422, `v${to} has no slug to roll back to`)
      const entry = {slug: target.slug, source_version: target.source_version ?? null, config: target.config, description: `Rollback to v${to}`, user}
      return this.release(name, entry, slugPath, activate)
    })
  }

  /**
   * Records a release in three steps, so a failure at any one leaves the app as it was: the slug is
   * extracted to releases/vN (a slug that cannot be extracted is refused), `activate` puts its dynos
   * in place, and only then is the release appended to the ledger and the config file updated.
   */
  private async release(name: string, entry: Omit<Release, 'v' | 'created_at'>, slugPath: SlugPath, activate?: Activate): Promise<Release> {
    const app = await this.existing(name)
    const ledger = this.ledger(name)
    const v = ((await ledger.current())?.v ?? 0) + 1
    const dir = app.releaseDir(v)
    if (entry.slug !== null) await extractRelease(slugPath(entry.slug), dir)
    try {
      if (entry.slug !== null) await activate?.({v, dir, slug: entry.slug, config: entry.config, sourceVersion: entry.source_version ?? null})
      const release = await ledger.append(entry)
      if (release.v !== v) throw new Error(`release v${release.v} recorded where v${v} was prepared`)
      await writeFileAtomic(app.config, `${JSON.stringify(entry.config, null, 2)}\n`, 0o600)
      return release
    } catch (error) {
      await rm(dir, {recursive: true, force: true})
      throw error
    }
  }

  /** The app's current release, if it has one. */
  async current(name: string): Promise<Release | undefined> {
    await this.existing(name)
    return this.ledger(name).current()
  }

  private serialised<T>(name: string, work: () => Promise<T>): Promise<T> {
    const result = (this.queues.get(name) ?? Promise.resolve()).then(work, work)
    this.queues.set(
      name,
      result.catch(() => {}),
    )
    return result
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

  /** Bytes each app uses on disk: everything under apps/<app>/ (releases, logs, build cache, ledger, config). */
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

/** Where the slug with this sha256 is on the host. */
export type SlugPath = (sha256: string) => string

/** Extracts a slug to `dir` through a staging directory: `dir` appears complete or not at all. */
async function extractRelease(slugPath: string, dir: string): Promise<void> {
  const staging = join(dirname(dir), `.incoming-${process.pid}-${Date.now()}`)
  try {
    await extractSlug(slugPath, staging)
    await rm(dir, {recursive: true, force: true})
    await rename(staging, dir)
  } catch (error) {
    await rm(staging, {recursive: true, force: true})
    if (isDevError(error)) throw new AppError(422, error.message)
    throw error
  }
}

async function readConfig(path: string): Promise<Record<string, string>> {
  return JSON.parse(await readFile(path, 'utf8')) as Record<string, string>
}
