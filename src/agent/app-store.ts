import {randomBytes} from 'node:crypto'
import {access, mkdir, readdir, readFile, rename, rm} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import {isDevError} from '../runtime/dev-error.js'
import {extractSlug} from '../slug/extract-slug.js'

import {writeFileAtomic} from '../runtime/atomic-write.js'
import {ENV_KEY} from '../runtime/env-file.js'
import {agentPaths} from './agent-home.js'
import {AppError} from './app-error.js'
import {collectReleaseDirs, collectSlugs, diskUsage, releasesToKeep} from './release-gc.js'
import {ReleaseLedger, type Release} from './release-ledger.js'

import {APP_NAME} from './app-name.js'

export {APP_NAME}

/** What a release about to be recorded runs: its number, its extracted slug and its config. */
export interface ReleasePlan {
  v: number
  dir: string
  slug: string
  config: Record<string, string>
  sourceVersion: string | null
  /** Run the Procfile's `release` command first (a deploy or config change, not a rollback). */
  releasePhase: boolean
}

/**
 * Puts a release's dynos in place around its recording (the dyno manager's switch): the new dynos
 * start and come up, then `commit` records the release, and only then are the old dynos stopped.
 * If the new dynos fail or `commit` throws, the new dynos are stopped, nothing is recorded and the
 * release's files are removed: the app keeps running what it ran.
 */
export type Activate = (plan: ReleasePlan, commit: () => Promise<void>) => Promise<void>

/** The apps on this host: their config vars (config.json, 0600) and release ledgers. */
export class AppStore {
  private readonly paths: ReturnType<typeof agentPaths>
  private readonly ledgers = new Map<string, ReleaseLedger>()
  /** Changes to one app happen one at a time, so a release's number is known before it is recorded. */
  private readonly queues = new Map<string, Promise<unknown>>()
  /** Apps being destroyed: gone for every request from the moment it starts. */
  private readonly destroying = new Set<string>()

  constructor(home: string) {
    this.paths = agentPaths(home)
  }

  /** The apps, by name (a tombstone's name is no app name, so a destroyed app is never listed). */
  async list(): Promise<string[]> {
    return (await readdir(this.paths.apps).catch(() => [] as string[])).filter((name) => APP_NAME.test(name) && !this.destroying.has(name)).sort()
  }

  async create(name: string): Promise<void> {
    if (!APP_NAME.test(name)) throw new AppError(422, `invalid app name "${name}": use 2-30 lower-case letters, digits and dashes, starting with a letter`)
    if (this.destroying.has(name)) throw new AppError(409, `app ${name} is being destroyed; create it again once that is done`)
    if ((await this.list()).includes(name)) throw new AppError(409, `app ${name} already exists`)
    const app = this.paths.app(name)
    await mkdir(app.dir, {recursive: true, mode: 0o700})
    await writeFileAtomic(app.config, '{}\n', 0o600)
  }

  /** The config vars: the current release's (the ledger is the record), or config.json before any release. */
  async config(name: string): Promise<Record<string, string>> {
    const app = await this.existing(name)
    return {...((await this.ledger(name).current())?.config ?? (await readConfig(app.config)))}
  }

  /**
   * Sets (a string) or unsets (null) config vars, and records a release "Set A, B config vars"
   * with the new config. Keys are checked first, so a bad request changes nothing.
   */
  async patchConfig(name: string, changes: Record<string, string | null>, user: string, slugPath: SlugPath, activate?: Activate): Promise<{config: Record<string, string>; release: Release}> {
    checkEnvVars(changes, 'config var')
    return this.serialised(name, async () => {
      const config = await this.config(name)
      for (const [key, value] of Object.entries(changes)) {
        if (value === null) delete config[key]
        else config[key] = value
      }
      const size = Object.entries(config).reduce((total, [key, value]) => total + Buffer.byteLength(key) + Buffer.byteLength(value), 0)
      if (size > MAX_CONFIG_BYTES) throw new AppError(422, `the config vars would take ${size} bytes; an app's config vars may take at most ${MAX_CONFIG_BYTES} (keep files and certificates out of them)`)
      const current = await this.ledger(name).current()
      const set = Object.keys(changes).filter((key) => changes[key] !== null)
      const unset = Object.keys(changes).filter((key) => changes[key] === null)
      const description = [set.length > 0 ? `Set ${set.join(', ')}` : '', unset.length > 0 ? `Unset ${unset.join(', ')}` : ''].filter(Boolean).join('; ') + ' config vars'
      const entry = {slug: current?.slug ?? null, source_version: current?.source_version ?? null, config, description, user}
      const release = await this.release(name, entry, slugPath, activate, true)
      return {config, release}
    })
  }

  /** Deploys a slug the host has: a release "Deploy abc1234" with the current config. */
  async deploy(name: string, slug: {sha256: string; sourceVersion?: string | null; releasePhase?: boolean; message?: string}, user: string, slugPath: SlugPath, activate?: Activate): Promise<Release> {
    return this.serialised(name, async () => {
      const config = await this.config(name)
      // One line in the ledger: a message of the deploy's own is kept to its first line.
      const message = slug.message?.split('\n')[0]?.trim()
      const description = `Deploy ${slug.sha256.slice(0, 7)}${message ? `: ${message}` : ''}`
      const entry = {slug: slug.sha256, source_version: slug.sourceVersion ?? null, config, description, user}
      return this.release(name, entry, slugPath, activate, slug.releasePhase ?? true)
    })
  }

  /** A new release with the slug and config of vK; the app's config becomes vK's again. */
  async rollback(name: string, to: number, user: string, slugPath: SlugPath, activate?: Activate): Promise<Release> {
    await this.existing(name)
    return this.serialised(name, async () => {
      const target = await this.ledger(name).get(to)
      if (target === undefined) throw new AppError(404, `app ${name} has no release v${to}`)
      if (target.slug === null) throw new AppError(422, `v${to} has no slug to roll back to`)
      // Old slugs are collected (each app keeps its last releases'): say so, not "damaged".
      if (!(await access(slugPath(target.slug)).then(() => true, () => false))) throw new AppError(422, `the slug of v${to} (${target.slug.slice(0, 12)}) is no longer on this host (only the last releases' slugs are kept); roll back to a later release, or deploy that code again`)
      const entry = {slug: target.slug, source_version: target.source_version ?? null, config: target.config, description: `Rollback to v${to}`, user}
      return this.release(name, entry, slugPath, activate, false)
    })
  }

  /**
   * Records a release in three steps, so a failure at any one leaves the app as it was: the slug is
   * extracted to releases/vN (a slug that cannot be extracted is refused), `activate` brings its
   * dynos up, and the release is appended to the ledger before the old dynos go. The ledger is the
   * record: config.json follows it, and is set right at the agent's start if a crash came between.
   */
  private async release(name: string, entry: Omit<Release, 'v' | 'created_at'>, slugPath: SlugPath, activate: Activate | undefined, releasePhase: boolean): Promise<Release> {
    const app = await this.existing(name)
    const ledger = this.ledger(name)
    const v = ((await ledger.current())?.v ?? 0) + 1
    const dir = app.releaseDir(v)
    let recorded: Release | undefined
    // Throws only when nothing was recorded.
    const commit = async () => {
      recorded = await ledger.append(entry)
      // The release stands once recorded; a config.json not written now is set right at the next start.
      await writeFileAtomic(app.config, `${JSON.stringify(entry.config, null, 2)}\n`, 0o600).catch((error: Error) => {
        process.stderr.write(`dev-agent: cannot write ${app.config}: ${error.message}\n`)
      })
    }
    if (entry.slug !== null) await extractRelease(slugPath(entry.slug), dir)
    try {
      if (entry.slug !== null && activate) await activate({v, dir, slug: entry.slug, config: entry.config, sourceVersion: entry.source_version ?? null, releasePhase}, commit)
      else await commit()
    } catch (error) {
      await rm(dir, {recursive: true, force: true})
      throw error
    }
    return recorded!
  }

  /**
   * At the agent's start: config.json says what the ledger's current release says (a crash between
   * recording a release and writing config.json leaves it one release behind).
   */
  async reconcileConfig(name: string): Promise<void> {
    const current = await this.ledger(name).current()
    if (current === undefined) return
    const app = this.paths.app(name)
    const text = `${JSON.stringify(current.config, null, 2)}\n`
    if ((await readFile(app.config, 'utf8').catch(() => '')) !== text) await writeFileAtomic(app.config, text, 0o600)
  }

  /** The app's current release, if it has one. */
  async current(name: string): Promise<Release | undefined> {
    await this.existing(name)
    return this.ledger(name).current()
  }

  /**
   * Destroys an app: from now on it is gone for every request; `stop` stops what runs of it, then
   * apps/<app> is renamed in one step to a tombstone (no app, never half of one) and removed. A
   * tombstone left by a crash is removed at the agent's next start (removeTombstones).
   */
  async destroy(name: string, stop: () => Promise<void>): Promise<void> {
    const app = await this.existing(name)
    this.destroying.add(name)
    const tombstone = join(this.paths.apps, `${TOMBSTONE}${name}-${randomBytes(4).toString('hex')}`)
    try {
      await this.serialised(name, async () => {
        await stop()
        await rename(app.dir, tombstone)
      })
    } finally {
      this.ledgers.delete(name)
      this.destroying.delete(name)
    }
    await rm(tombstone, {recursive: true, force: true})
  }

  /** At the agent's start: removes what destroyed apps left (the agent stopped before it was gone). */
  async removeTombstones(): Promise<void> {
    const names = await readdir(this.paths.apps).catch(() => [] as string[])
    for (const name of names.filter((each) => each.startsWith(TOMBSTONE))) await rm(join(this.paths.apps, name), {recursive: true, force: true})
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

/** How the directory of a destroyed app starts until it is removed: `apps/.destroyed-shop-1a2b3c4d`. */
const TOMBSTONE = '.destroyed-'

/** All of an app's config vars, keys and values: what fits every dyno's environment with room to spare. */
export const MAX_CONFIG_BYTES = 64 * 1024

/**
 * Refuses (422) a variable a process environment cannot hold: a bad name, a NUL in its value (the
 * kernel would cut it there), or a value over 32 KiB.
 */
export function checkEnvVars(vars: Record<string, string | null>, what: string): void {
  for (const [key, value] of Object.entries(vars)) {
    if (!ENV_KEY.test(key) || key.length > 255) throw new AppError(422, `invalid ${what} name "${key.slice(0, 64)}": up to 255 letters, digits, "_", "." and "-", not starting with a digit`)
    if (value === null) continue
    if (value.includes('\0')) throw new AppError(422, `${what} ${key} holds a NUL character, which no environment can carry`)
    if (Buffer.byteLength(value) > 32 * 1024) throw new AppError(422, `${what} ${key} is ${Buffer.byteLength(value)} bytes; a value may take at most 32768`)
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
    // A refused archive may still have writes in flight for a moment: retry until the tree is gone.
    await rm(staging, {recursive: true, force: true, maxRetries: 10, retryDelay: 20})
    if (isDevError(error)) throw new AppError(422, error.message)
    throw error
  }
}

async function readConfig(path: string): Promise<Record<string, string>> {
  return JSON.parse(await readFile(path, 'utf8')) as Record<string, string>
}
