import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdir, mkdtemp, readFile, rm} from 'node:fs/promises'
import {join} from 'node:path'
import {createInterface} from 'node:readline'

import {writeFileAtomic} from '../runtime/atomic-write.js'
import {signalGroup} from '../runtime/process-group.js'
// Types only: the build code runs in the worker, never in the agent's own process.
import type {SlugManifest} from '../slug/slug-build.js'
import {agentPaths} from './agent-home.js'
import {AppError} from './app-error.js'
import type {AppStore} from './app-store.js'
import type {BuildEvent, BuildJob} from './build-worker.js'
import {collectSlugs} from './release-gc.js'
import {SlugStore, SourceStore} from './slug-store.js'

export interface HostBuildRequest {
  app: string
  /** The sha256 of an uploaded source archive. */
  source: string
  /** The client's git commit and whether its tree was dirty (the archive holds no .git). */
  sourceVersion?: {commit: string | null; dirty: boolean}
}

/** One running build. */
export interface HostBuild {
  /** The slug's manifest once it is in slugs/; a failed or stopped build rejects with a one-line message. */
  readonly result: Promise<SlugManifest>
  /** Stops the build (its client is gone): no slug and no build directory are left. */
  abort(): void
  /** Holds the build's output (and so the build) while its reader is slow; resume() lets it go on. */
  pause(): void
  resume(): void
}

export interface HostBuildsOptions {
  home: string
  apps: AppStore
  /** The command that starts a worker; default: this agent's own `build-worker` subcommand. */
  worker?: readonly string[]
  /** How long a stopped worker has to stop its buildpack steps before it is killed. */
  stopGraceMs?: number
}

const STOP_GRACE_MS = 10_000
/** How much of a worker's stderr a crash report repeats. */
const STDERR_TAIL_LINES = 5

/**
 * Builds on the host: each build runs in a worker process (`dev-agent build-worker`) with the same
 * buildpack code as `dev build`, in a fresh directory under builds/, with the app's cache and its
 * config vars as ENV_DIR; the slug it makes is moved into the slug store. One build at a time per
 * app, since they share the cache.
 */
export class HostBuilds {
  readonly sources: SourceStore
  private readonly slugs: SlugStore
  private readonly buildsDir: string
  private readonly paths: ReturnType<typeof agentPaths>
  /** The running build of each app: since when, and the source it uses (spared by collection). */
  private readonly running = new Map<string, {since: string; source: string}>()
  /** Apps being destroyed: no build of them starts. */
  private readonly excluded = new Set<string>()

  constructor(private readonly options: HostBuildsOptions) {
    this.sources = new SourceStore(options.home)
    this.slugs = new SlugStore(options.home)
    this.paths = agentPaths(options.home)
    this.buildsDir = join(options.home, 'builds')
  }

  /**
   * Starts a build of an uploaded source. Refused before anything starts: an unknown app or source
   * (404), or an app with a build running (409). Output lines go to `onLine` as they come.
   */
  async start(request: HostBuildRequest, onLine: (line: string) => void): Promise<HostBuild> {
    const {app, source} = request
    const config = await this.options.apps.config(app)
    if (this.excluded.has(app)) throw new AppError(404, `no app named ${app}`)
    const current = this.running.get(app)
    if (current) throw new AppError(409, `a build of ${app} is running since ${current.since}`)
    this.running.set(app, {since: new Date().toISOString(), source})
    let dir: string | undefined
    try {
      if (!(await this.sources.has(source))) throw new AppError(404, `no source ${source} on this host; upload it first (PUT /sources/${source})`)
      const key = buildKey(source, config, this.options.worker ?? [process.argv[1] ?? ''])
      const reused = await this.reusable(app, key)
      if (reused !== undefined) {
        onLine(`-----> The same source and config vars as the build of ${reused.created_at}: reusing slug ${reused.id}`)
        this.running.delete(app)
        // The same bytes; the commit is the one this build is for.
        const manifest = {...reused, source_version: request.sourceVersion ?? {commit: null, dirty: false}}
        return {result: Promise.resolve(manifest), abort: () => {}, pause: () => {}, resume: () => {}}
      }
      await mkdir(this.buildsDir, {recursive: true, mode: 0o700})
      dir = await mkdtemp(join(this.buildsDir, `${app}-`))
      const job: BuildJob = {
        source: this.sources.path(source),
        dir,
        cacheDir: join(this.paths.app(app).dir, 'cache'),
        buildEnv: config,
        sourceVersion: request.sourceVersion ?? {commit: null, dirty: false},
      }
      const build = this.run(app, job, onLine)
      void build.result.then((manifest) => this.remember(app, key, manifest)).catch(() => {})
      return build
    } catch (error) {
      if (dir !== undefined) await rm(dir, {recursive: true, force: true})
      this.running.delete(app)
      throw error
    }
  }

  /**
   * Runs `work` (destroying the app) with no build of the app running or starting: a build would
   * write into the app's cache. Refused (409) while a build of it runs.
   */
  async excluding<T>(app: string, work: () => Promise<T>): Promise<T> {
    const current = this.running.get(app)
    if (current) throw new AppError(409, `a build of ${app} is running since ${current.since}; wait for it to end, or stop it`)
    this.excluded.add(app)
    try {
      return await work()
    } finally {
      this.excluded.delete(app)
    }
  }

  /** Starts the worker and turns its events into a HostBuild; the app's slot is freed once all is cleaned up. */
  private run(app: string, job: BuildJob, onLine: (line: string) => void): HostBuild {
    const [command, ...args] = this.options.worker ?? [process.execPath, process.argv[1]!, 'build-worker']
    // Its own process group, which a stop signals as a whole; the worker passes the stop on to the
    // compile step, which runs in a group of its own.
    const worker = spawn(command!, args, {detached: true, stdio: ['pipe', 'pipe', 'pipe']})
    let stopped = false
    let workerGone = false
    let killTimer: NodeJS.Timeout | undefined
    let outcome: {slug: SlugManifest; file: string} | {error: string} | undefined
    const stderr: string[] = []

    // The worker's stdin stays open while the agent lives: it is how a worker learns it was orphaned.
    worker.stdin.on('error', () => {})
    worker.stdin.write(`${JSON.stringify(job)}\n`)
    createInterface({input: worker.stdout}).on('line', (text) => {
      const event = parseEvent(text)
      if ('line' in event) onLine(event.line)
      else outcome = event
    })
    createInterface({input: worker.stderr}).on('line', (line) => {
      stderr.push(line)
      if (stderr.length > STDERR_TAIL_LINES) stderr.shift()
    })

    const exited = new Promise<string>((resolve) => {
      worker.once('error', (error) => resolve(error.message))
      worker.once('close', (code, signal) => resolve(`exit ${code ?? signal}`))
    })
    const result = exited.then(async (exit) => {
      workerGone = true
      clearTimeout(killTimer)
      worker.stdin.destroy()
      try {
        if (stopped) throw new Error('the build was stopped')
        if (outcome === undefined) throw new Error(`the build worker failed (${exit})${stderr.length > 0 ? `: ${stderr.at(-1)}` : ''}`)
        if ('error' in outcome) throw new Error(outcome.error)
        await this.slugs.adopt(outcome.slug.sha256, outcome.file)
        return outcome.slug
      } finally {
        await rm(job.dir, {recursive: true, force: true})
        this.running.delete(app)
        await this.collectSources()
      }
    })
    const abort = () => {
      if (stopped || workerGone || worker.pid === undefined) return
      stopped = true
      signalGroup(worker.pid, 'SIGTERM')
      killTimer = setTimeout(() => signalGroup(worker.pid!, 'SIGKILL'), this.options.stopGraceMs ?? STOP_GRACE_MS)
    }
    return {result, abort, pause: () => worker.stdout.pause(), resume: () => worker.stdout.resume()}
  }

  /** The slug an earlier build of the same source, config and buildpacks made, if it is still here. */
  private async reusable(app: string, key: string): Promise<SlugManifest | undefined> {
    const builds = await readBuilds(this.buildsFile(app))
    const manifest = builds[key]
    // Touched: a slug about to be deployed again must outlive the garbage collection of releases.
    return manifest !== undefined && (await this.slugs.touch(manifest.sha256)) ? manifest : undefined
  }

  /** Keeps what a build made for reuse (the last few builds of the app). */
  private async remember(app: string, key: string, manifest: SlugManifest): Promise<void> {
    const file = this.buildsFile(app)
    const builds = Object.entries({...(await readBuilds(file)), [key]: manifest}).slice(-REMEMBERED_BUILDS)
    await writeFileAtomic(file, `${JSON.stringify(Object.fromEntries(builds), null, 2)}\n`, 0o600)
  }

  private buildsFile(app: string): string {
    return join(this.paths.app(app).dir, 'builds.json')
  }

  /** Removes source archives older than an hour that no running build uses. */
  private async collectSources(): Promise<void> {
    const inUse = new Set([...this.running.values()].map((build) => build.source))
    await collectSlugs(this.sources.dir, inUse).catch(() => {})
  }
}

/** How many builds of an app are remembered for reuse. */
const REMEMBERED_BUILDS = 10

/**
 * What makes two builds the same: the source, the config vars (buildpacks see them) and the
 * buildpacks themselves (this agent's build, which carries them).
 */
function buildKey(source: string, config: Record<string, string>, agent: readonly string[]): string {
  const sorted = Object.fromEntries(Object.entries(config).sort(([a], [b]) => a.localeCompare(b)))
  return createHash('sha256').update(JSON.stringify([source, sorted, agent])).digest('hex')
}

async function readBuilds(file: string): Promise<Record<string, SlugManifest>> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Record<string, SlugManifest>
  } catch {
    return {}
  }
}

/** A line of the worker's stdout; anything but an event (a stray print) counts as build output. */
function parseEvent(text: string): BuildEvent {
  try {
    const event = JSON.parse(text) as BuildEvent
    if (typeof event === 'object' && event !== null && ('line' in event || 'slug' in event || 'error' in event)) return event
  } catch {
    // not JSON: output
  }
  return {line: text}
}
