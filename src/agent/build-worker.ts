import {rm} from 'node:fs/promises'
import {join} from 'node:path'
import type {Readable, Writable} from 'node:stream'

import {DevError} from '../runtime/dev-error.js'
import {DISK_FULL_MESSAGE, isDiskFull} from './app-error.js'
import {extractSlug} from '../slug/extract-slug.js'
import {slugPath} from '../slug/pack-slug.js'
import {buildSlug, type SlugManifest} from '../slug/slug-build.js'

/**
 * One build, as the agent asks for it: a single JSON line on the worker's stdin, so the config
 * vars never appear in an argv (which any user of the host can read).
 */
export interface BuildJob {
  /** The source archive (sources/<sha256>.tgz). */
  source: string
  /** A fresh, empty directory for this build alone; the agent removes it afterwards. */
  dir: string
  /** The app's buildpack cache, kept between builds. */
  cacheDir: string
  /** The app's config vars, given to the buildpacks as ENV_DIR. */
  buildEnv: Record<string, string>
  sourceVersion: {commit: string | null; dirty: boolean}
}

/** What the worker reports on its stdout, one JSON object a line. */
export type BuildEvent = {line: string} | {slug: SlugManifest; file: string} | {error: string}

/**
 * `dev-agent build-worker`: runs one build in a process of its own, so the synchronous parts
 * (packing) never stall the agent. Extracts the source archive into JOB.dir/source and builds it
 * with the same code as `dev build`; the slug is left in JOB.dir/slug for the agent to move into
 * its slug store. SIGTERM stops the build (buildpack steps included). When stdin ends or stdout
 * breaks, the agent is gone and nobody will clean up after this build: the worker stops and
 * removes JOB.dir itself.
 */
export async function runBuildWorker(_args: string[], input: Readable = process.stdin, output: Writable = process.stdout): Promise<number> {
  const stop = new AbortController()
  const onTerm = () => stop.abort()
  process.once('SIGTERM', onTerm)
  let orphaned = false
  const orphan = () => {
    orphaned = true
    stop.abort()
  }
  output.on('error', orphan)
  const report = (event: BuildEvent) => {
    if (!orphaned) output.write(`${JSON.stringify(event)}\n`)
  }
  try {
    const job = JSON.parse(await firstLine(input)) as BuildJob
    input.once('end', orphan)
    if (input.readableEnded) orphan()
    input.resume()
    try {
      return await build(job, stop.signal, report)
    } finally {
      if (orphaned) await rm(job.dir, {recursive: true, force: true})
    }
  } finally {
    process.off('SIGTERM', onTerm)
    // An open stdin would keep this process alive once the build is over.
    input.destroy()
  }
}

async function build(job: BuildJob, signal: AbortSignal, report: (event: BuildEvent) => void): Promise<number> {
  const root = join(job.dir, 'source')
  const slugsDir = join(job.dir, 'slug')
  // The extracted source is no git work tree, and git must not find one around it.
  process.env.GIT_CEILING_DIRECTORIES = job.dir
  try {
    await extractSlug(job.source, root).catch((error: unknown) => {
      if (isDiskFull(error)) throw new DevError(DISK_FULL_MESSAGE)
      const reason = ((error as Error).cause as Error | undefined)?.message ?? (error as Error).message
      throw new DevError(`the source archive cannot be extracted safely (${reason}); upload it again`)
    })
    signal.throwIfAborted()
    const onLine = (line: string) => report({line})
    const {warnings, ...manifest} = await buildSlug(
      {root, secrets: [], cacheDir: job.cacheDir, slugsDir, tempDir: join(job.dir, 'work'), buildEnv: job.buildEnv, sourceVersion: job.sourceVersion, signal},
      onLine,
    )
    for (const warning of warnings) onLine(`warning: ${warning}`)
    report({slug: manifest, file: slugPath(slugsDir, manifest.sha256)})
    return 0
  } catch (error) {
    const message = signal.aborted ? 'the build was stopped' : isDiskFull(error) ? DISK_FULL_MESSAGE : error instanceof Error ? error.message : String(error)
    // The failing step's output was streamed already: the error is the line that says what failed.
    report({error: message.split('\n')[0]!.replace(/; its last output:$/, '')})
    return 1
  }
}

/** The first line of `input`; the rest of the stream is left for other listeners. */
function firstLine(input: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8')
      const end = text.indexOf('\n')
      if (end === -1) return
      input.off('data', onData)
      input.off('end', onEnd)
      resolve(text.slice(0, end))
    }
    const onEnd = () => reject(new Error('no build job on stdin: this command is run by the agent'))
    input.on('data', onData)
    input.once('end', onEnd)
  })
}
