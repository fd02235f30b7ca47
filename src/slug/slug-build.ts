import {execFileSync} from 'node:child_process'
import {existsSync, realpathSync} from 'node:fs'
import {copyFile, lstat, mkdir, mkdtemp, readlink, rename, rm, symlink, writeFile} from 'node:fs/promises'
import {arch, platform, tmpdir} from 'node:os'
import {dirname, join, relative, resolve} from 'node:path'

import {execa} from 'execa'
import pMap from 'p-map'

import {writeFileAtomic} from '../runtime/atomic-write.js'
import {DevError} from '../runtime/dev-error.js'
import {ENV_KEY, parseEnvFile} from '../runtime/env-file.js'
import {scanProcfile} from '../runtime/procfile.js'
import {readTextFileIfExists} from '../runtime/text-file.js'
import {appJsonBuildpacks, BUILTIN_BUILDPACKS, builtinBuildpack, compile, detect, release, stepError, type Buildpack} from './buildpack.js'
import {packSlug, slugPath} from './pack-slug.js'
import {FILE_CONCURRENCY, sourceSet} from './source-set.js'

/** What `.dev/slugs/<sha256>.json` records about a slug. */
export interface SlugManifest {
  id: string
  sha256: string
  size: number
  process_types: Record<string, string>
  buildpacks: string[]
  created_at: string
  source_version: {commit: string | null; dirty: boolean}
  stack: {os: string; arch: string; libc: string; node: string}
}

export interface SlugBuildOptions {
  /** The app root. */
  root: string
  /** Env files named with -e: never packed (nor ROOT/.env, nor the --build-env file, in any case). */
  secrets: readonly string[]
  /** A file of build-time variables (env-file grammar), given to buildpacks as ENV_DIR. */
  buildEnvFile?: string
  /** More build-time variables for ENV_DIR (over the file's): a host gives an app's config vars. */
  buildEnv?: Readonly<Record<string, string>>
  /** What the slug records as its source, instead of asking git (a host builds an extracted archive). */
  sourceVersion?: {commit: string | null; dirty: boolean}
  /** Defaults: ROOT/.dev/slugs and ROOT/.dev/cache. */
  slugsDir?: string
  cacheDir?: string
  /** Where the build directory and ENV_DIR are made (default: the OS's temporary directory). */
  tempDir?: string
  /** Aborting stops the running buildpack step, and the build fails before its next step. */
  signal?: AbortSignal
  /** Warn above this size, refuse above that (bytes). */
  warnBytes?: number
  maxBytes?: number
}

export const DEFAULT_WARN_BYTES = 300 * 1024 ** 2
export const DEFAULT_MAX_BYTES = 1024 ** 3

/**
 * One build, step by step, so a progress display can show each: collect (copy the source set into
 * a fresh build directory: the working tree is never written), detect, compile, pack. Nothing is
 * written under .dev/slugs until pack succeeds; dispose() removes the temporary directories.
 */
export class SlugBuild {
  readonly buildDir: string
  private readonly envDir: string
  private buildpacks: Buildpack[] = []
  private defaults: Record<string, string> = {}
  private files: string[] = []
  /** False while nothing needs a build directory: an app the built-in "none" packs as it is. */
  private copied = false
  /** Aborted by dispose(): a running buildpack step is stopped. */
  private readonly abort = new AbortController()
  readonly warnings: string[] = []

  private constructor(
    private readonly options: SlugBuildOptions,
    private readonly workDir: string,
  ) {
    this.buildDir = join(workDir, 'build')
    this.envDir = join(workDir, 'env')
    options.signal?.addEventListener('abort', () => this.abort.abort(), {once: true})
    if (options.signal?.aborted) this.abort.abort()
  }

  static async create(options: SlugBuildOptions): Promise<SlugBuild> {
    const parent = options.tempDir ?? tmpdir()
    await mkdir(parent, {recursive: true})
    const work = await mkdtemp(join(parent, 'dev-build-'))
    return new SlugBuild(options, work)
  }

  /** Finds the source set and writes ENV_DIR; returns the file count. */
  async collect(): Promise<number> {
    this.files = await sourceSet({root: this.options.root, secrets: this.secretFiles()})
    await this.writeEnvDir()
    return this.files.length
  }

  /**
   * Copies the source set into the build directory, where buildpacks may write. Skipped when the
   * only buildpack is the built-in "none", which writes nothing: the source set is then packed
   * from where it is, and the working tree is still never written.
   */
  private async copySource(which: (file: string) => boolean): Promise<void> {
    const {root} = this.options
    const files = this.files.filter(which)
    await mkdir(this.buildDir, {recursive: true})
    // Directories first (each once), then the files, many at a time.
    for (const dir of [...new Set(files.map((file) => dirname(file)))].sort()) await mkdir(join(this.buildDir, dir), {recursive: true})
    await pMap(
      files,
      async (file) => {
        const from = join(root, file)
        const to = join(this.buildDir, file)
        if ((await lstat(from)).isSymbolicLink()) await symlink(await readlink(from), to)
        else await copyFile(from, to)
      },
      {concurrency: FILE_CONCURRENCY},
    )
  }

  /** Chooses the buildpacks: app.json's, else the first built-in whose detect applies. */
  async detect(): Promise<string[]> {
    const env = this.stepEnv()
    const listed = await appJsonBuildpacks(this.options.root)
    if (listed) {
      await this.copySource(() => true)
      this.copied = true
      for (const buildpack of listed) {
        const verdict = await detect(buildpack, this.buildDir, {env})
        if (!verdict.applies) throw stepError(buildpack, 'detect', 'it does not apply to this app, though app.json names it', verdict.output)
      }
      this.buildpacks = listed
    } else {
      // The built-in detect scripts look only at the app's top-level files: copy those first, and
      // the rest only if a buildpack that writes is chosen.
      await this.copySource((file) => !file.includes('/'))
      for (const name of BUILTIN_BUILDPACKS) {
        const buildpack = builtinBuildpack(name)
        if ((await detect(buildpack, this.buildDir, {env})).applies) {
          this.buildpacks = [buildpack]
          break
        }
      }
      if (this.buildpacks[0]?.name !== 'none') {
        await this.copySource((file) => file.includes('/'))
        this.copied = true
      }
    }
    return this.buildpacks.map((buildpack) => buildpack.name)
  }

  /** Runs each buildpack's compile (output line by line to `onLine`), then its release. */
  async compile(onLine?: (line: string) => void): Promise<void> {
    if (!this.copied) {
      onLine?.('-----> No build step: packing the app as it is')
      return
    }
    const env = this.stepEnv()
    const cache = this.options.cacheDir ?? join(this.options.root, '.dev', 'cache')
    await mkdir(cache, {recursive: true})
    for (const buildpack of this.buildpacks) {
      this.abort.signal.throwIfAborted()
      await compile(buildpack, {build: this.buildDir, cache, env: this.envDir}, {env, onLine, signal: this.abort.signal})
      Object.assign(this.defaults, (await release(buildpack, this.buildDir, {env})).default_process_types)
    }
  }

  /** Packs the build directory into .dev/slugs/<sha256>.tgz and writes its manifest. */
  async pack(): Promise<SlugManifest> {
    this.abort.signal.throwIfAborted()
    const processTypes = await this.processTypes()
    const slugsDir = this.slugsDir()
    // What the buildpacks added (node_modules, .venv, .profile.d) is part of the slug too.
    const dir = this.copied ? this.buildDir : this.options.root
    const files = this.copied ? await sourceSet({root: this.buildDir, secrets: [], slugignore: false}) : this.files
    const packed = await packSlug(dir, files, this.packingPath())
    const maxBytes = this.options.maxBytes ?? DEFAULT_MAX_BYTES
    if (packed.size > maxBytes) {
      await rm(packed.path, {force: true})
      throw new DevError(`the slug is ${megabytes(packed.size)}, over the limit of ${megabytes(maxBytes)}; leave files out with .slugignore, or raise --max-size`)
    }
    if (packed.size > (this.options.warnBytes ?? DEFAULT_WARN_BYTES)) {
      this.warnings.push(`the slug is ${megabytes(packed.size)}: large slugs are slow to ship and start; leave files out with .slugignore`)
    }
    await rename(packed.path, slugPath(slugsDir, packed.sha256))
    const manifest: SlugManifest = {
      id: packed.sha256.slice(0, 12),
      sha256: packed.sha256,
      size: packed.size,
      process_types: processTypes,
      buildpacks: this.buildpacks.map((buildpack) => buildpack.name),
      created_at: new Date().toISOString(),
      source_version: this.options.sourceVersion ?? (await sourceVersion(this.options.root, this.secretFiles())),
      stack: stack(),
    }
    await writeFileAtomic(join(slugsDir, `${packed.sha256}.json`), `${JSON.stringify(manifest, null, 2)}\n`)
    return manifest
  }

  /** Removes the build directory, ENV_DIR and any half-written slug: safe to call at any time. */
  async dispose(): Promise<void> {
    this.abort.abort()
    await rm(this.workDir, {recursive: true, force: true})
    await rm(this.packingPath(), {force: true})
    await rm(`${this.packingPath()}.partial-${process.pid}`, {force: true})
  }

  private slugsDir(): string {
    return this.options.slugsDir ?? join(this.options.root, '.dev', 'slugs')
  }

  private packingPath(): string {
    return join(this.slugsDir(), `.building-${process.pid}.tgz`)
  }

  /** The Procfile's types over the buildpacks' defaults; a merged Procfile is written into the build. */
  private async processTypes(): Promise<Record<string, string>> {
    const procfile = join(this.copied ? this.buildDir : this.options.root, 'Procfile')
    const text = await readTextFileIfExists(procfile)
    const scan = text === undefined ? {types: [], problems: []} : scanProcfile(text, 'Procfile')
    const errors = scan.problems.filter((problem) => problem.severity === 'error' && problem.line !== null)
    if (errors.length > 0) throw new DevError(`the Procfile has errors; run dev check (${errors[0]!.message})`)
    const types: Record<string, string> = {...this.defaults}
    for (const type of scan.types) types[type.name] = type.command
    if (Object.keys(types).length === 0) throw new DevError('no process types: add a Procfile (for example "web: node server.js --port $PORT")')
    const added = Object.keys(this.defaults).filter((name) => !scan.types.some((type) => type.name === name))
    if (added.length > 0 && this.copied) {
      const lines = Object.entries(types).map(([name, command]) => `${name}: ${command}`)
      await writeFile(procfile, `${lines.join('\n')}\n`)
    }
    return types
  }

  /** Files that hold secrets: the default .env, any -e file, and the build-time variables. */
  private secretFiles(): string[] {
    const {root, secrets, buildEnvFile} = this.options
    return [join(root, '.env'), ...secrets, ...(buildEnvFile === undefined ? [] : [resolve(buildEnvFile)])]
  }

  /** One file per build-time variable, readable by the owner only, outside the build directory. */
  private async writeEnvDir(): Promise<void> {
    await mkdir(this.envDir, {recursive: true, mode: 0o700})
    const variables: [string, string][] = []
    if (this.options.buildEnvFile !== undefined) {
      const text = await readTextFileIfExists(this.options.buildEnvFile)
      if (text === undefined) throw new DevError(`--build-env file does not exist: ${this.options.buildEnvFile}`)
      for (const entry of parseEnvFile(text, this.options.buildEnvFile)) variables.push([entry.key, entry.value])
    }
    variables.push(...Object.entries(this.options.buildEnv ?? {}))
    for (const [key, value] of variables) {
      // Each name becomes a file name: one that is not a variable name could climb out of ENV_DIR.
      if (!ENV_KEY.test(key)) throw new DevError(`invalid build-time variable name "${key}"`)
      await writeFile(join(this.envDir, key), value, {mode: 0o600})
    }
  }

  /** The environment of buildpack steps: dev's own, with STACK; never the app's env files. */
  private stepEnv(): NodeJS.ProcessEnv {
    return {...process.env, STACK: `${platform()}-${arch()}`}
  }
}

/** Runs a whole build; the steps are SlugBuild's, for callers without a progress display. */
export async function buildSlug(options: SlugBuildOptions, onLine?: (line: string) => void): Promise<SlugManifest & {warnings: string[]}> {
  const build = await SlugBuild.create(options)
  try {
    await build.collect()
    await build.detect()
    await build.compile(onLine)
    const manifest = await build.pack()
    return {...manifest, warnings: build.warnings}
  } finally {
    await build.dispose()
  }
}

/**
 * The git commit of the source, and whether the files that go into the slug differ from it.
 * `secrets` are all the env files left out of the slug (ROOT/.env included): they never make it dirty.
 */
export async function sourceVersion(root: string, secrets: readonly string[]): Promise<{commit: string | null; dirty: boolean}> {
  const options = {cwd: root, reject: false, stdin: 'ignore', env: {GIT_OPTIONAL_LOCKS: '0'}} as const
  const head = await execa('git', ['rev-parse', 'HEAD'], options)
  if (head.exitCode !== 0) return {commit: null, dirty: false}
  // dev's own .dev/ and the env files never go into a slug, so they do not make it dirty.
  const leftOut = ['.dev', ...secrets.map((path) => relative(root, path))].map((path) => `:(exclude)${path}`)
  const status = await execa('git', ['status', '--porcelain', '--', '.', ...leftOut], options)
  return {commit: head.stdout.trim(), dirty: status.stdout.trim() !== ''}
}

function stack(): SlugManifest['stack'] {
  return {os: platform(), arch: arch(), libc: libc(), node: nodeOnPath()}
}

function libc(): string {
  const report = process.report?.getReport() as {header?: {glibcVersionRuntime?: string}} | undefined
  return report?.header?.glibcVersionRuntime ? `glibc ${report.header.glibcVersionRuntime}` : 'unknown'
}

/** The version of the `node` a buildpack would run, which may differ from dev's own. */
function nodeOnPath(): string {
  const found = (process.env.PATH ?? '').split(':').map((dir) => join(dir, 'node')).find((path) => existsSync(path))
  if (found === undefined) return 'none'
  // The same binary as dev's own needs no extra process to ask.
  if (realpathSync(found) === realpathSync(process.execPath)) return process.version
  try {
    return execFileSync(found, ['--version'], {encoding: 'utf8'}).trim()
  } catch {
    return 'unknown'
  }
}

function megabytes(bytes: number): string {
  return `${(bytes / 1024 ** 2).toFixed(1)} MB`
}
