import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import type {IncomingMessage} from 'node:http'
import {join} from 'node:path'

import {readText} from '../runtime/agent-client.js'
import {resolveAppFiles} from '../runtime/app-files.js'
import {checkApp} from '../runtime/check.js'
import {DevError, isDevError} from '../runtime/dev-error.js'
import {formatBytes} from '../runtime/format-bytes.js'
import {findSlug} from '../slug/find-slug.js'
import {packSource} from '../slug/pack-source.js'
import {hashFile} from '../slug/pack-slug.js'
import {buildSlug, sourceVersion} from '../slug/slug-build.js'
import {requireCurrentAgent} from './agent-version.js'
import {openHost} from './open-host.js'
import {RemoteAgent} from './remote-agent.js'
import {streamLines} from './stream-lines.js'
import type {ConnectOptions} from './ssh-connection.js'

/** Where the slug of a deploy comes from. */
export type SlugSource = {kind: 'host-build'} | {kind: 'local-build'} | {kind: 'slug'; ref: string}

/** What a deploy tells its user, step by step; `host` is undefined for steps of the whole deploy. */
export interface DeployReport {
  step(host: string | undefined, text: string): void
  /** A line of output from a build or the release phase, as it comes. */
  output(host: string, line: string): void
  warn(text: string): void
}

export interface DeployOptions {
  root: string
  app: string
  hosts: readonly string[]
  source: SlugSource
  message?: string
  connect: ConnectOptions
  report: DeployReport
  /** Aborting stops the deploy between steps; open connections close, which releases the locks. */
  signal?: AbortSignal
}

export interface DeploySummary {
  app: string
  release: number[]
  slug: {sha256: string; bytes: number}
  hosts: {host: string; release: string; dynos: {name: string; state: string}[]; urls: string[]}[]
}

interface Target {
  host: string
  agent: RemoteAgent
  lock?: IncomingMessage
  token?: string
  /** The release it ran before this deploy (what a failure rolls it back to), and that release's slug. */
  previous?: number
  previousSlug?: string
  released?: number
  /** Made a new release in this deploy (a failure later rolls it back). */
  switched?: boolean
}

/**
 * `dev deploy`: checks the app, takes each host's deploy lock, gets the slug (built on the first
 * host from the uploaded source, built here, or an existing one), copies the same slug to every
 * host, then releases host by host: the release phase runs once (first host), each host switches
 * with zero downtime before the next starts. If any step fails, hosts already switched are rolled
 * back to the release they ran, so every host serves what it served before; the locks go with the
 * connections.
 */
export async function deploy(options: DeployOptions): Promise<DeploySummary> {
  const {app, report} = options
  const files = resolveAppFiles({root: options.root})
  const check = await checkApp(files)
  const error = check.problems.find((problem) => problem.severity === 'error')
  if (error !== undefined) throw new DevError(`${error.file}${error.line === null ? '' : `:${error.line}`}: ${error.message}; the app cannot be deployed until \`dev check\` passes`)
  const version = await sourceVersion(files.root, files.envFiles)
  if (version.dirty) report.warn('the working tree has uncommitted changes: the slug records it as dirty')

  const targets: Target[] = []
  // Cancelling closes every connection: a build or upload under way stops, the locks go with them.
  // Once hosts are being released, it waits for the host under way, then rolls back (see below).
  let releasing = false
  const closeAll = () => {
    for (const target of targets) {
      target.lock?.destroy()
      target.agent.close()
    }
  }
  const onAbort = () => {
    if (!releasing) closeAll()
  }
  options.signal?.addEventListener('abort', onAbort)
  try {
    // Every host at once: connections, then each one's app, lock and current release.
    const opened = await Promise.allSettled(options.hosts.map((host) => openHost(host, options.connect)))
    for (const [index, result] of opened.entries()) if (result.status === 'fulfilled') targets.push({host: options.hosts[index]!, agent: new RemoteAgent(result.value)})
    const refused = opened.find((result) => result.status === 'rejected')
    if (refused !== undefined) throw (refused as PromiseRejectedResult).reason
    await Promise.all(targets.map((target) => prepare(target, app, report)))
    aborted(options.signal)

    const slug = await obtainSlug(options, targets[0]!, version)
    for (const target of targets.slice(1)) await copySlug(slug, targets[0]!, target, report)
    aborted(options.signal)

    const commit = version.commit === null ? null : `${version.commit.slice(0, 7)}${version.dirty ? '-dirty' : ''}`
    // The release phase runs once: on the first host that releases.
    let releasePhase = true
    releasing = true
    for (const [index, target] of targets.entries()) {
      if (options.signal?.aborted) {
        await rollBack(targets.slice(0, index), app, report)
        throw new DevError(`deploy cancelled before ${target.host}; ${targets.slice(0, index).some((each) => each.switched) ? 'the hosts that had switched were rolled back' : 'no host had switched'}`)
      }
      if (target.previousSlug === slug.sha256) {
        report.step(target.host, `v${target.previous} runs this slug already: nothing to release`)
        target.released = target.previous
        continue
      }
      try {
        target.released = await release(target, app, {slug: slug.sha256, commit, releasePhase, message: options.message}, report)
        target.switched = true
        releasePhase = false
      } catch (error) {
        await rollBack(targets.slice(0, index), app, report)
        throw error
      }
    }
    // Every host serves the new release: a failure to report it is a warning, not a failed deploy.
    return await summary(app, slug, targets).catch((error: Error) => {
      report.warn(`deployed, but the summary could not be read: ${error.message}`)
      return {app, release: targets.map((target) => target.released!), slug, hosts: targets.map((target) => ({host: target.host, release: `v${target.released}`, dynos: [], urls: []}))}
    })
  } catch (error) {
    if (options.signal?.aborted && !releasing) throw new DevError('deploy cancelled before any host released: every host serves what it served before')
    throw error
  } finally {
    options.signal?.removeEventListener('abort', onAbort)
    closeAll()
  }
}

function aborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new DevError('deploy cancelled before any host released: every host serves what it served before')
}

/** The app exists on the host, its deploy lock is ours, and we know what it runs now. */
async function prepare(target: Target, app: string, report: DeployReport): Promise<void> {
  await requireCurrentAgent(target.agent)
  const created = await target.agent.call('POST', '/apps', {name: app})
  if (created.status === 201) report.step(target.host, `created app ${app}`)
  else if (created.status !== 409) throw new DevError(`${target.host}: cannot create app ${app}: ${created.json?.message ?? created.text}`)
  const lock = await target.agent.request('POST', `/apps/${app}/lock`)
  if (lock.statusCode !== 200) {
    const text = await readText(lock)
    throw new DevError(`${target.host}: ${jsonMessage(text)}`)
  }
  target.lock = lock
  target.token = (JSON.parse(await firstLine(lock)) as {token: string}).token
  const listed = await target.agent.call('GET', `/apps/${app}/releases`)
  if (listed.status !== 200) throw new DevError(`${target.host}: cannot read the releases of ${app}: ${listed.json?.message ?? listed.text}`)
  const current = (listed.json as {v: number; slug: string | null}[]).at(-1)
  if (current?.slug != null) {
    target.previous = current.v
    target.previousSlug = current.slug
  }
}

/** The slug to deploy, on the first host: built there from the uploaded source, built here, or given. */
async function obtainSlug(options: DeployOptions, first: Target, version: {commit: string | null; dirty: boolean}): Promise<{sha256: string; bytes: number; path?: string}> {
  const {report, app, source} = options
  const files = resolveAppFiles({root: options.root})
  if (source.kind !== 'host-build') {
    let path: string
    if (source.kind === 'slug') path = await findSlug(source.ref, join(files.root, '.dev/slugs'), process.cwd())
    else {
      report.step(undefined, 'building the slug here')
      const manifest = await buildSlug({root: files.root, secrets: files.envFiles}, (line) => report.output('local', line))
      path = join(files.root, '.dev/slugs', `${manifest.sha256}.tgz`)
    }
    const slug = {sha256: await hashFile(path), bytes: (await stat(path)).size, path}
    await uploadSlug(slug, first, report)
    return slug
  }
  const packed = await packSource({root: files.root, secrets: files.envFiles})
  try {
    const has = await first.agent.call('HEAD', `/sources/${packed.sha256}`)
    if (has.status === 200) report.step(first.host, `source ${packed.sha256.slice(0, 12)} is there already (${packed.files} files)`)
    else {
      const started = Date.now()
      const put = await inStep(first.host, 'the source upload', () => first.agent.call('PUT', `/sources/${packed.sha256}`, createReadStream(packed.path)))
      if (put.status !== 201 && put.status !== 200) throw new DevError(`${first.host}: source upload refused: ${put.json?.message ?? put.text}`)
      report.step(first.host, `uploaded the source: ${packed.files} files, ${formatBytes(packed.size)} at ${formatRate(packed.size, Date.now() - started)}`)
    }
    report.step(first.host, 'building the slug')
    const build = await first.agent.request('POST', `/apps/${app}/builds`, {body: Buffer.from(JSON.stringify({source: packed.sha256, source_version: version}))})
    if (build.statusCode !== 200) throw new DevError(`${first.host}: the build was refused: ${jsonMessage(await readText(build))}`)
    let slug: {sha256: string; size: number} | undefined
    let failure: string | undefined
    await inStep(first.host, 'the build', async () => {
      for await (const line of ndjson(build)) {
        const event = line as {line?: string; slug?: {sha256: string; size: number}; error?: string}
        if (event.line !== undefined) report.output(first.host, event.line)
        if (event.slug) slug = event.slug
        if (event.error) failure = event.error
      }
    })
    if (slug === undefined) throw new DevError(`${first.host}: the build failed: ${failure ?? 'the host closed the connection'}`)
    report.step(first.host, `built slug ${slug.sha256.slice(0, 12)} (${formatBytes(slug.size)})`)
    return {sha256: slug.sha256, bytes: slug.size}
  } finally {
    await packed.dispose()
  }
}

/** Puts a slug from this machine on a host, unless it has it. */
async function uploadSlug(slug: {sha256: string; bytes: number; path?: string}, target: Target, report: DeployReport): Promise<void> {
  if ((await target.agent.call('HEAD', `/slugs/${slug.sha256}`)).status === 200) {
    report.step(target.host, `slug ${slug.sha256.slice(0, 12)} is there already`)
    return
  }
  const started = Date.now()
  const put = await target.agent.call('PUT', `/slugs/${slug.sha256}`, createReadStream(slug.path!))
  if (put.status !== 201 && put.status !== 200) throw new DevError(`${target.host}: slug upload refused: ${put.json?.message ?? put.text}`)
  report.step(target.host, `uploaded slug ${slug.sha256.slice(0, 12)}: ${formatBytes(slug.bytes)} at ${formatRate(slug.bytes, Date.now() - started)}`)
}

/** The same slug on another host: from this machine when it is here, else streamed from the first host. */
async function copySlug(slug: {sha256: string; bytes: number; path?: string}, from: Target, to: Target, report: DeployReport): Promise<void> {
  if (slug.path !== undefined) return uploadSlug(slug, to, report)
  if ((await to.agent.call('HEAD', `/slugs/${slug.sha256}`)).status === 200) {
    report.step(to.host, `slug ${slug.sha256.slice(0, 12)} is there already`)
    return
  }
  const started = Date.now()
  const download = await from.agent.request('GET', `/slugs/${slug.sha256}`)
  if (download.statusCode !== 200) throw new DevError(`${from.host}: cannot read slug ${slug.sha256.slice(0, 12)}: ${jsonMessage(await readText(download))}`)
  // The receiving host checks the sha256 of what arrives against the name: a slug is the same everywhere.
  const put = await to.agent.call('PUT', `/slugs/${slug.sha256}`, download)
  if (put.status !== 201 && put.status !== 200) throw new DevError(`${to.host}: slug copy refused: ${put.json?.message ?? put.text}`)
  report.step(to.host, `copied slug ${slug.sha256.slice(0, 12)} from ${from.host}: ${formatBytes(slug.bytes)} at ${formatRate(slug.bytes, Date.now() - started)}`)
}

/** Releases the slug on one host (the release phase's output shown as it runs); resolves to vN. */
async function release(target: Target, app: string, plan: {slug: string; commit: string | null; releasePhase: boolean; message?: string}, report: DeployReport): Promise<number> {
  report.step(target.host, plan.releasePhase ? 'releasing (release phase, then the switch)' : 'releasing (the switch)')
  // The release phase's lines, as they come: a tail of the host's log while the release is made.
  const tail = plan.releasePhase ? await target.agent.request('GET', `/apps/${app}/log?tail=1&lines=0&ps=release&source=app`).catch(() => undefined) : undefined
  if (tail !== undefined) void showLines(tail, (line) => report.output(target.host, line.replace(/^\S+ app\[release\.\d+\]: /, '')))
  try {
    const body = {slug: plan.slug, source_version: plan.commit, release_phase: plan.releasePhase, ...(plan.message === undefined ? {} : {description: plan.message})}
    const answer = await target.agent.call('POST', `/apps/${app}/releases`, body, {'dev-lock': target.token!}).catch(async (error: Error) => {
      // The connection broke with the release under way: the host may have made it. Ask.
      const releases = (await target.agent.call('GET', `/apps/${app}/releases`)).json as {v: number; slug: string | null}[]
      const current = releases.at(-1)
      if (current !== undefined && current.slug === plan.slug && current.v !== target.previous) return {status: 201, json: current, text: ''}
      throw new DevError(`${target.host}: release failed: ${error.message}`)
    })
    if (answer.status !== 201) throw new DevError(`${target.host}: release failed: ${answer.json?.message ?? answer.text}`)
    report.step(target.host, `v${answer.json.v} is serving`)
    return answer.json.v as number
  } finally {
    tail?.destroy()
  }
}

/** Puts hosts that switched back on the release they ran before this deploy. */
async function rollBack(targets: readonly Target[], app: string, report: DeployReport): Promise<void> {
  for (const target of targets) {
    if (!target.switched) continue
    if (target.previous === undefined) {
      report.warn(`${target.host} ran no release before this deploy, so there is nothing to roll it back to: it serves v${target.released}`)
      continue
    }
    const answer = await target.agent.call('POST', `/apps/${app}/releases`, {rollback: target.previous}, {'dev-lock': target.token!}).catch((error: Error) => ({status: 0, json: {message: error.message}, text: ''}))
    if (answer.status === 201) report.step(target.host, `rolled back to v${target.previous} (as v${answer.json.v})`)
    else report.warn(`${target.host}: could not roll back to v${target.previous}: ${answer.json?.message ?? answer.text}; it serves v${target.released}`)
  }
}

/** What each host runs now (old dynos still draining are left out: they are on their way out). */
async function summary(app: string, slug: {sha256: string; bytes: number}, targets: readonly Target[]): Promise<DeploySummary> {
  const hosts = await Promise.all(
    targets.map(async (target) => {
      const [dynos, agent, routing] = await Promise.all([target.agent.call('GET', `/apps/${app}/dynos`), target.agent.call('GET', '/agent'), target.agent.call('GET', `/apps/${app}`)])
      const port = agent.json.router_port as number
      const hostname = target.agent.hostname
      const domains = (routing.json?.domains ?? []) as string[]
      const suffix = port === 80 ? '' : `:${port}`
      // The host's own name reaches the app only when no other app is serving there.
      const urls = domains.length > 0 ? domains.map((domain) => `http://${domain}${suffix}/`) : routing.json?.every_host === true ? [`http://${hostname}${suffix}/`] : []
      return {host: target.host, release: `v${target.released}`, dynos: (dynos.json as {name: string; state: string}[]).filter((dyno) => dyno.state !== 'stopping').map(({name, state}) => ({name, state})), urls}
    }),
  )
  return {app, release: targets.map((target) => target.released!), slug, hosts}
}

/**
 * Names the step a broken connection cut short: its own error says only "aborted" or "socket hang
 * up". Errors that already say what happened pass as they are.
 */
async function inStep<T>(host: string, step: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    const message = (error as Error).message
    const noAnswer = `the agent on ${host} did not answer: `
    if (isDevError(error) && !message.startsWith(noAnswer)) throw error
    throw new DevError(`${host}: the connection broke off during ${step} (${message.replace(noAnswer, '')}); nothing was released there: run dev deploy again`, {cause: error})
  }
}

/** The first line of an answer that stays open (the lock's). */
function firstLine(stream: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    const onData = (chunk: Buffer) => {
      text += chunk.toString()
      const end = text.indexOf('\n')
      if (end === -1) return
      stream.off('data', onData)
      resolve(text.slice(0, end))
    }
    stream.on('data', onData)
    stream.once('end', () => reject(new DevError('the host closed the deploy lock at once')))
  })
}

async function* ndjson(stream: IncomingMessage): AsyncGenerator<unknown> {
  for await (const line of streamLines(stream)) if (line.trim() !== '') yield JSON.parse(line)
}

/** Shows a tail's lines until it is closed (closing it early is how it ends, not an error). */
async function showLines(stream: IncomingMessage, show: (line: string) => void): Promise<void> {
  try {
    for await (const line of streamLines(stream)) show(line)
  } catch {
    // Destroyed once the release answered.
  }
}

function jsonMessage(text: string): string {
  try {
    return (JSON.parse(text) as {message?: string}).message ?? text
  } catch {
    return text
  }
}

function formatRate(bytes: number, ms: number): string {
  return `${formatBytes(Math.round((bytes / Math.max(ms, 1)) * 1000))}/s`
}
