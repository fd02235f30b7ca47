import {access, constants, readFile} from 'node:fs/promises'
import {basename, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

import {execa} from 'execa'
import {parse as parseYaml} from 'yaml'

import {DevError} from '../runtime/dev-error.js'
import {killGroupsAfter, signalGroup} from '../runtime/process-group.js'

/** A directory with bin/detect, bin/compile and (optionally) bin/release: Heroku's buildpack API. */
export interface Buildpack {
  name: string
  dir: string
}

/** What bin/release may declare. */
export interface BuildpackRelease {
  default_process_types: Record<string, string>
}

/** The buildpacks that ship with dev, tried in this order when app.json names none. */
export const BUILTIN_BUILDPACKS = ['node', 'python', 'none'] as const

/**
 * Where the built-in buildpacks are: beside dev's own code, or where the host agent (one bundled
 * file) wrote out the copies it carries (DEV_BUILDPACKS_DIR).
 */
function builtinDir(): string {
  return process.env.DEV_BUILDPACKS_DIR ?? fileURLToPath(new URL('../../buildpacks/', import.meta.url))
}
/** How long a stopped compile step's processes get after SIGTERM before SIGKILL. */
const COMPILE_STOP_GRACE_MS = 5000
/** How much of a failing step's output an error repeats. */
const TAIL_LINES = 15

/** Thrown when a buildpack step fails; the message names the buildpack and step and ends with its last output lines. */
export class BuildpackError extends DevError {}

export function builtinBuildpack(name: (typeof BUILTIN_BUILDPACKS)[number]): Buildpack {
  return {name, dir: join(builtinDir(), name)}
}

/**
 * The buildpacks named in app.json (`"buildpacks": ["./bp", {"url": "../other"}]`, local
 * directories relative to the app root), or undefined when app.json names none.
 */
export async function appJsonBuildpacks(appRoot: string): Promise<Buildpack[] | undefined> {
  const path = join(appRoot, 'app.json')
  const text = await readFile(path, 'utf8').catch(() => undefined)
  if (text === undefined) return undefined
  let manifest: unknown
  try {
    manifest = JSON.parse(text)
  } catch (error) {
    throw new DevError(`app.json is not valid JSON (${(error as Error).message}); fix it or remove it`)
  }
  const listed = (manifest as {buildpacks?: unknown}).buildpacks
  if (listed === undefined) return undefined
  if (!Array.isArray(listed)) throw new DevError('app.json: "buildpacks" must be a list of buildpack directories')
  const buildpacks: Buildpack[] = []
  for (const item of listed) {
    const ref = typeof item === 'string' ? item : (item as {url?: unknown})?.url
    if (typeof ref !== 'string' || ref === '') throw new DevError('app.json: each buildpack is a directory path, or {"url": PATH}')
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref) || ref.startsWith('heroku/')) {
      throw new DevError(`app.json: buildpack "${ref}" is not a local directory; dev builds only with buildpacks on this machine (clone it and give its path)`)
    }
    const dir = resolve(appRoot, ref)
    for (const step of ['detect', 'compile']) {
      if (!(await isExecutable(join(dir, 'bin', step)))) throw new DevError(`app.json: buildpack ${ref} has no executable bin/${step} (looked in ${dir})`)
    }
    buildpacks.push({name: basename(dir), dir})
  }
  return buildpacks.length > 0 ? buildpacks : undefined
}

export interface StepOptions {
  /** Each line the step prints (stdout and stderr). */
  onLine?(line: string): void
  env: NodeJS.ProcessEnv
  /** Aborting stops the step and everything it started. */
  signal?: AbortSignal
}

/** What bin/detect said: the name it prints when it applies, or its output when it does not. */
export async function detect(buildpack: Buildpack, buildDir: string, options: StepOptions): Promise<{applies: true; name: string} | {applies: false; output: string}> {
  const result = await execa(join(buildpack.dir, 'bin', 'detect'), [buildDir], {reject: false, all: true, env: options.env, extendEnv: false, stdin: 'ignore'})
  if (result.exitCode === undefined) throw stepError(buildpack, 'detect', `cannot run it: ${(result as {code?: string}).code ?? 'unknown error'}`)
  if (result.exitCode !== 0) return {applies: false, output: result.all ?? ''}
  return {applies: true, name: result.stdout.trim().split('\n')[0] || buildpack.name}
}

/** bin/compile BUILD_DIR CACHE_DIR ENV_DIR, its output streamed line by line. */
export async function compile(buildpack: Buildpack, dirs: {build: string; cache: string; env: string}, options: StepOptions): Promise<void> {
  const tail: string[] = []
  const child = execa(join(buildpack.dir, 'bin', 'compile'), [dirs.build, dirs.cache, dirs.env], {
    reject: false,
    all: true,
    lines: false,
    buffer: false,
    env: options.env,
    extendEnv: false,
    stdin: 'ignore',
    cwd: dirs.build,
    // Its own process group, so stopping it stops whatever it started (npm, pip, compilers).
    detached: true,
  })
  const stop = () => {
    if (child.pid === undefined) return
    signalGroup(child.pid, 'SIGTERM')
    // What ignores SIGTERM gets SIGKILL after a grace (it would also hold the output pipe open).
    void killGroupsAfter([child.pid], COMPILE_STOP_GRACE_MS)
  }
  options.signal?.addEventListener('abort', stop, {once: true})
  let partial = ''
  child.all?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n')
    partial = lines.pop()!
    for (const line of lines) emit(line)
  })
  const emit = (line: string) => {
    tail.push(line)
    if (tail.length > TAIL_LINES) tail.shift()
    options.onLine?.(line)
  }
  const result = await child
  options.signal?.removeEventListener('abort', stop)
  if (partial !== '') emit(partial)
  const why = result.exitCode === undefined ? `cannot run it: ${(result as {code?: string}).code ?? 'unknown error'}` : `exit ${result.exitCode}`
  if (result.exitCode !== 0) throw stepError(buildpack, 'compile', why, tail.join('\n'))
}

/** bin/release BUILD_DIR, if the buildpack has one: its YAML, of which dev uses default_process_types. */
export async function release(buildpack: Buildpack, buildDir: string, options: StepOptions): Promise<BuildpackRelease> {
  const bin = join(buildpack.dir, 'bin', 'release')
  if (!(await isExecutable(bin))) return {default_process_types: {}}
  const result = await execa(bin, [buildDir], {reject: false, env: options.env, extendEnv: false, stdin: 'ignore'})
  if (result.exitCode !== 0) throw stepError(buildpack, 'release', `exit ${result.exitCode ?? result.message}`, result.stderr || result.stdout)
  let parsed: unknown
  try {
    parsed = parseYaml(result.stdout) ?? {}
  } catch (error) {
    throw stepError(buildpack, 'release', `its output is not YAML (${(error as Error).message.split('\n')[0]})`, result.stdout)
  }
  const types = (parsed as {default_process_types?: unknown}).default_process_types ?? {}
  if (typeof types !== 'object' || types === null || Object.values(types).some((command) => typeof command !== 'string')) {
    throw stepError(buildpack, 'release', 'default_process_types must map names to commands', result.stdout)
  }
  return {default_process_types: types as Record<string, string>}
}

export function stepError(buildpack: Buildpack, step: string, why: string, output = ''): BuildpackError {
  const tail = output.trim().split('\n').slice(-TAIL_LINES).join('\n')
  return new BuildpackError(`buildpack ${buildpack.name} failed in bin/${step} (${why})${tail ? `; its last output:\n${tail}` : ''}`)
}

async function isExecutable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  )
}
