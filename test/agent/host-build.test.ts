import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {chmod, cp, mkdir, readdir, readFile, stat, utimes, writeFile} from 'node:fs/promises'
import {createServer, request, type IncomingMessage, type Server} from 'node:http'
import {join} from 'node:path'

import {list} from 'tar'
import {afterEach, describe, expect, it} from 'vitest'

import {readJson, sendJson, type Route} from '../../src/agent/api-route.js'
import {AppError} from '../../src/agent/app-error.js'
import {AppStore} from '../../src/agent/app-store.js'
import {buildRoutes} from '../../src/agent/build-routes.js'
import type {BuildJob} from '../../src/agent/build-worker.js'
import {HostBuilds, type HostBuild} from '../../src/agent/host-build.js'
import {SourceStore} from '../../src/agent/slug-store.js'
import {extractSlug} from '../../src/slug/extract-slug.js'
import {packSource, type PackedSource} from '../../src/slug/pack-source.js'
import {buildSlug} from '../../src/slug/slug-build.js'
import {processAlive} from '../support/processes.js'
import {projectRoot} from '../support/run-bin.js'
import {tempApp} from '../support/temp-app.js'

/** The worker run from the TypeScript sources, as the bundled agent runs `dev-agent build-worker`. */
const WORKER = [process.execPath, '--import', 'tsx', join(projectRoot, 'test/support/build-worker-entry.ts')]
const SECRET = 'do-not-pack-or-show'

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

/** A copy of fixtures/buildpack-app with a secret .env and a secret -e file. */
async function fixtureApp(): Promise<string> {
  const root = await tempApp({})
  await cp(join(projectRoot, 'fixtures/buildpack-app'), root, {recursive: true})
  await writeFile(join(root, '.env'), `SECRET=${SECRET}\n`)
  await writeFile(join(root, 'prod.env'), `SECRET=${SECRET}\n`)
  return root
}

/**
 * An app whose buildpack reports the mode of ENV_DIR's files and its background pid, then, when
 * the SLOW config var is set, waits (a long compile to stop); FAIL makes it fail.
 */
async function slowApp(): Promise<string> {
  const root = await tempApp({
    Procfile: 'web: sh web.sh\n',
    'web.sh': 'echo hi\n',
    'app.json': '{"buildpacks": ["./bp"]}\n',
    'bp/bin/detect': '#!/bin/sh\necho slow\n',
    'bp/bin/compile': [
      '#!/bin/sh',
      'echo "secret mode $(stat -c %a "$3/SECRET")"',
      'if [ -f "$3/FAIL" ]; then echo boom; exit 3; fi',
      'if [ -f "$3/SLOW" ]; then sleep 60 & echo "sleeper $!"; echo compiling; wait; fi',
      'echo done',
      '',
    ].join('\n'),
  })
  for (const step of ['detect', 'compile']) await chmod(join(root, 'bp/bin', step), 0o755)
  return root
}

/** A host: a fresh DEV_AGENT_HOME with the app "shop" and these config vars. */
async function host(config: Record<string, string>): Promise<{home: string; apps: AppStore; setConfig(config: Record<string, string>): Promise<void>}> {
  const home = join(await tempApp({}), 'agent-home')
  const apps = new AppStore(home)
  await apps.create('shop')
  // The config file as the agent keeps it (0600); AppStore.config reads it for each build.
  const setConfig = (vars: Record<string, string>) => writeFile(join(home, 'apps/shop/config.json'), JSON.stringify(vars), {mode: 0o600})
  await setConfig(config)
  return {home, apps, setConfig}
}

async function packed(root: string, options: {slugignore?: boolean} = {}): Promise<PackedSource> {
  const source = await packSource({root, secrets: [join(root, 'prod.env')], ...options})
  cleanups.push(source.dispose)
  return source
}

/** Packs the app's source and uploads it to the host, as `dev deploy` will. */
async function upload(home: string, root: string): Promise<string> {
  const source = await packed(root)
  await new SourceStore(home).put(source.sha256, createReadStream(source.path), 1024 ** 3)
  return source.sha256
}

async function entries(archive: string): Promise<string[]> {
  const paths: string[] = []
  await list({file: archive, onReadEntry: (entry) => paths.push(entry.path)})
  return paths
}

async function names(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).sort()
}

/** Runs a build to its end, collecting its output. */
async function build(builds: HostBuilds, source: string, sourceVersion?: {commit: string | null; dirty: boolean}) {
  const lines: string[] = []
  const running = await builds.start({app: 'shop', source, sourceVersion}, (line) => lines.push(line))
  const slug = await running.result.catch((error: Error) => error)
  return {lines, slug}
}

/** Resolves with the first output line that matches, while the build goes on. */
function waitForLine(pattern: RegExp): {onLine(line: string): void; seen: Promise<string>} {
  let found: (line: string) => void
  const seen = new Promise<string>((resolve) => (found = resolve))
  return {onLine: (line) => pattern.test(line) && found(line), seen}
}

/** The command lines of every process on this (Linux) machine. */
async function allCommandLines(): Promise<string[]> {
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name))
  return Promise.all(pids.map((pid) => readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')))
}

describe('packSource', () => {
  it('packs the source set as dev build collects it, reproducibly, without the env files', async () => {
    const root = await fixtureApp()
    const first = await packed(root)
    // New times and modes the archive does not record: the same tree gives the same bytes.
    await utimes(join(root, 'Procfile'), new Date(), new Date('2020-01-01'))
    await chmod(join(root, 'notes/todo.txt'), 0o600)
    const second = await packed(root)
    expect(second.sha256).toBe(first.sha256)
    expect(second.size).toBe(first.size)
    expect(createHash('sha256').update(await readFile(second.path)).digest('hex')).toBe(second.sha256)

    const paths = await entries(first.path)
    expect(paths).toEqual(expect.arrayContaining(['Procfile', 'app.json', 'web.sh', '.slugignore', 'buildpack/bin/compile']))
    expect(paths.filter((path) => path.includes('.env') || path.startsWith('notes') || path.startsWith('.dev'))).toEqual([])
    expect(first.files).toBe(paths.filter((path) => !path.endsWith('/')).length)
    // Without .slugignore applied, the ignored files travel too (the host would still leave them out).
    expect(await entries((await packed(root, {slugignore: false})).path)).toContain('notes/todo.txt')

    await writeFile(join(root, 'web.sh'), 'echo changed\n')
    expect((await packed(root)).sha256).not.toBe(first.sha256)
    await first.dispose()
    await expect(stat(first.path)).rejects.toThrow()
  })
})

describe('builds on the host (real worker processes)', () => {
  it('makes the same slug as a local dev build, with the app cache kept and its config vars in ENV_DIR', async () => {
    const root = await fixtureApp()
    const buildEnv = join(await tempApp({}), 'build.env')
    await writeFile(buildEnv, 'GREETING=hello from the host\n')
    const local = await buildSlug({root, secrets: [join(root, 'prod.env')], buildEnvFile: buildEnv})

    const {home, apps, setConfig} = await host({GREETING: 'hello from the host'})
    const builds = new HostBuilds({home, apps, worker: WORKER})
    const source = await upload(home, root)
    const first = await build(builds, source, {commit: 'abc1234', dirty: true})
    expect(first.lines).toContain('-----> build number 1')
    if (first.slug instanceof Error) throw first.slug
    expect(first.slug.sha256).toBe(local.sha256)
    expect(first.slug.process_types).toEqual(local.process_types)
    expect(first.slug.buildpacks).toEqual(['buildpack'])
    expect(first.slug.source_version).toEqual({commit: 'abc1234', dirty: true})

    // The slug is in the host's slug store, alone: no manifest, partial file or build directory is left.
    expect(await names(join(home, 'slugs'))).toEqual([`${local.sha256}.tgz`])
    expect(await names(join(home, 'builds'))).toEqual([])
    const extracted = join(await tempApp({}), 'slug')
    await extractSlug(join(home, 'slugs', `${local.sha256}.tgz`), extracted)
    expect(await readFile(join(extracted, 'built.txt'), 'utf8')).toBe('hello from the host\n')
    expect(await entries(join(home, 'slugs', `${local.sha256}.tgz`))).not.toContain('GREETING')

    // The same source and config again: the slug is reused, nothing is built.
    const second = await build(builds, source)
    expect(second.lines).toEqual([expect.stringMatching(/^-----> The same source and config vars as the build of \S+: reusing slug [0-9a-f]{12}$/)])
    expect(second.slug).toMatchObject({sha256: local.sha256, source_version: {commit: null, dirty: false}})

    // Other config vars: a build again, with the app's cache from the first one.
    await setConfig({GREETING: 'hello from the host'.toUpperCase()})
    const third = await build(builds, source)
    expect(third.lines).toContain('-----> build number 2')
  })

  it('streams a failing build and its one-line error, leaves no slug, and removes source archives unused for an hour', async () => {
    const root = await slowApp()
    const {home, apps} = await host({SECRET, FAIL: '1'})
    const builds = new HostBuilds({home, apps, worker: WORKER})
    const source = await upload(home, root)
    const stale = join(home, 'sources', `${'e'.repeat(64)}.tgz`)
    await writeFile(stale, 'an archive uploaded long ago')
    await utimes(stale, new Date(Date.now() - 2 * 3600_000), new Date(Date.now() - 2 * 3600_000))

    const {lines, slug} = await build(builds, source)
    expect(lines).toEqual(['secret mode 600', 'boom'])
    expect(slug).toBeInstanceOf(Error)
    expect((slug as Error).message).toBe('buildpack bp failed in bin/compile (exit 3)')
    expect(await names(join(home, 'slugs'))).toEqual([])
    expect(await names(join(home, 'builds'))).toEqual([])
    expect(await names(join(home, 'sources'))).toEqual([`${source}.tgz`])
  })

  it('refuses an unknown app or source without holding the app for later builds', async () => {
    const {home, apps} = await host({})
    const builds = new HostBuilds({home, apps, worker: WORKER})
    const source = await upload(home, await slowApp())
    await expect(builds.start({app: 'nope', source}, () => {})).rejects.toMatchObject({status: 404, message: 'no app named nope'})
    await expect(builds.start({app: 'shop', source: 'f'.repeat(64)}, () => {})).rejects.toMatchObject({status: 404, message: expect.stringMatching(/^no source f{64} on this host; upload it first/)})
    // A refused build holds no slot.
    expect((await build(builds, source)).lines).toContain('done')
  })

  it('stops an aborted build with its buildpack steps, leaves nothing behind, and frees the app for the next build', async () => {
    const root = await slowApp()
    const {home, apps, setConfig} = await host({SECRET, SLOW: '1'})
    const builds = new HostBuilds({home, apps, worker: WORKER})
    const source = await upload(home, root)
    const sleeper = waitForLine(/^sleeper \d+$/)
    const running: HostBuild = await builds.start({app: 'shop', source}, sleeper.onLine)
    const pid = Number((await sleeper.seen).split(' ')[1])
    expect(processAlive(pid)).toBe(true)

    await expect(builds.start({app: 'shop', source}, () => {})).rejects.toMatchObject({status: 409, message: expect.stringMatching(/^a build of shop is running since \d{4}-\d\d-\d\dT/)})
    // Config vars reach the buildpack through ENV_DIR only: no command line on the machine shows one.
    expect((await allCommandLines()).filter((line) => line.includes(SECRET))).toEqual([])

    running.abort()
    await expect(running.result).rejects.toThrow('the build was stopped')
    expect(processAlive(pid)).toBe(false)
    expect(await names(join(home, 'slugs'))).toEqual([])
    expect(await names(join(home, 'builds'))).toEqual([])

    await setConfig({SECRET})
    const next = await build(builds, source)
    expect(next.lines).toContain('done')
    expect(next.slug).toMatchObject({buildpacks: ['bp']})
  })
})

describe('the build worker', () => {
  it('stops its build and removes its directory when the agent is gone (its stdin ends)', async () => {
    const root = await slowApp()
    const {home} = await host({})
    const source = await upload(home, root)
    const dir = join(home, 'builds', 'orphan')
    await mkdir(dir, {recursive: true})
    const worker = spawn(WORKER[0]!, WORKER.slice(1), {stdio: ['pipe', 'pipe', 'inherit']})
    const job: BuildJob = {source: new SourceStore(home).path(source), dir, cacheDir: join(home, 'apps/shop/cache'), buildEnv: {SECRET, SLOW: '1'}, sourceVersion: {commit: null, dirty: false}}
    worker.stdin.write(`${JSON.stringify(job)}\n`)
    // Its stdout stays open: the end of stdin alone tells it the agent is gone.
    let out = ''
    await new Promise<void>((resolve) =>
      worker.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString()
        if (out.includes('"line":"compiling"')) resolve()
      }),
    )
    const pid = Number(/"sleeper (\d+)"/.exec(out)![1])
    worker.stdin.end()
    expect(await new Promise((resolve) => worker.once('close', resolve))).toBe(1)
    expect(processAlive(pid)).toBe(false)
    expect(await names(join(home, 'builds'))).toEqual([])
  })
})

/** The API's dispatch, reduced to what these routes need: match, call, answer JSON or an AppError. */
async function serve(routes: Route[]): Promise<string> {
  const socket = join(await tempApp({}), 'agent.sock')
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url!, 'http://agent').pathname
    const route = routes.find(([method, pattern]) => method === req.method && pattern.test(path))
    if (!route) return sendJson(res, 404, {message: `no route ${req.method} ${path}`})
    const params = route[1].exec(path)!.slice(1)
    route[2]({req, res, body: () => readJson(req), user: 'ann', params, query: new URLSearchParams()}).then(
      (result) => result !== 'answered' && sendJson(res, result.status ?? 200, result.json),
      (error: unknown) => sendJson(res, error instanceof AppError ? error.status : 500, {message: (error as Error).message}),
    )
  })
  await new Promise<void>((resolve) => server.listen(socket, resolve))
  cleanups.push(() => new Promise((resolve) => server.close(resolve)))
  return socket
}

/** One request over the socket; resolves once the answer has started, with its body as a stream. */
function call(socket: string, method: string, path: string, body?: string | Buffer): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request({socketPath: socket, method, path, headers: {'content-type': 'application/json'}}, resolve)
    req.on('error', reject)
    req.end(body)
  })
}

async function text(res: IncomingMessage): Promise<string> {
  let out = ''
  for await (const chunk of res) out += chunk
  return out
}

async function postBuild(socket: string, body: unknown): Promise<IncomingMessage> {
  return call(socket, 'POST', '/apps/shop/builds', JSON.stringify(body))
}

describe('the build routes (real HTTP on a Unix socket)', () => {
  it('uploads a source content-addressed and streams its build as NDJSON', async () => {
    const root = await fixtureApp()
    const {home, apps} = await host({GREETING: 'hi'})
    const socket = await serve(buildRoutes({home, apps, worker: WORKER}))
    const source = await packed(root)
    const bytes = await readFile(source.path)

    expect((await call(socket, 'HEAD', `/sources/${source.sha256}`)).statusCode).toBe(404)
    const damaged = await call(socket, 'PUT', `/sources/${source.sha256}`, Buffer.concat([bytes, Buffer.from('x')]))
    expect([damaged.statusCode, JSON.parse(await text(damaged)).message]).toEqual([422, expect.stringMatching(/^the upload's sha256 is [0-9a-f]{64}, not /)])
    expect((await call(socket, 'PUT', `/sources/${source.sha256}`, bytes)).statusCode).toBe(201)
    expect((await call(socket, 'PUT', `/sources/${source.sha256}`, bytes)).statusCode).toBe(200)
    expect((await call(socket, 'HEAD', `/sources/${source.sha256}`)).statusCode).toBe(200)
    expect(await names(join(home, 'sources'))).toEqual([`${source.sha256}.tgz`])

    const res = await postBuild(socket, {source: source.sha256, source_version: {commit: 'abc1234', dirty: false}})
    expect([res.statusCode, res.headers['content-type']]).toEqual([200, 'application/x-ndjson'])
    const events = (await text(res))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
    expect(events).toContainEqual({line: '-----> build number 1'})
    const last = events.at(-1)
    expect(last.slug).toMatchObject({buildpacks: ['buildpack'], source_version: {commit: 'abc1234', dirty: false}})
    expect(await names(join(home, 'slugs'))).toEqual([`${last.slug.sha256}.tgz`])
  })

  it('answers refusals before streaming, and a bad body with 422', async () => {
    const {home, apps} = await host({})
    const socket = await serve(buildRoutes({home, apps, worker: WORKER}))
    const unknown = await postBuild(socket, {source: 'a'.repeat(64)})
    expect([unknown.statusCode, JSON.parse(await text(unknown)).message]).toEqual([404, expect.stringMatching(/^no source a{64} on this host/)])
    const noApp = await call(socket, 'POST', '/apps/nope/builds', JSON.stringify({source: 'a'.repeat(64)}))
    expect([noApp.statusCode, JSON.parse(await text(noApp)).message]).toEqual([404, 'no app named nope'])
    const bad = await postBuild(socket, {source: 'abc'})
    expect([bad.statusCode, JSON.parse(await text(bad)).message]).toEqual([422, 'invalid request body at source: a source archive is named by its sha256'])
    const badVersion = await postBuild(socket, {source: 'a'.repeat(64), source_version: {commit: 1, dirty: false}})
    expect([badVersion.statusCode, JSON.parse(await text(badVersion)).message]).toEqual([422, expect.stringMatching(/^invalid request body at source_version\.commit/)])
    expect((await call(socket, 'HEAD', `/sources/nope`)).statusCode).toBe(404)
    const badName = await call(socket, 'PUT', '/sources/nope', 'x')
    expect([badName.statusCode, JSON.parse(await text(badName)).message]).toEqual([422, 'invalid source id "nope": a source is named by its sha256 (64 hex digits)'])
  })

  it('stops the build when the client disconnects', async () => {
    const root = await slowApp()
    const {home, apps, setConfig} = await host({SECRET, SLOW: '1'})
    const socket = await serve(buildRoutes({home, apps, worker: WORKER}))
    const source = await upload(home, root)
    const res = await postBuild(socket, {source})
    // Read until the compile is waiting, then hang up.
    let seen = ''
    for await (const chunk of res) {
      seen += chunk
      if (seen.includes('"line":"compiling"')) break
    }
    const pid = Number(/"sleeper (\d+)"/.exec(seen)![1])
    res.socket.destroy()

    // The build's slot is free once it has been cleaned up; a new build then starts at once.
    await setConfig({SECRET})
    let next: IncomingMessage
    for (let tries = 0; ; tries++) {
      next = await postBuild(socket, {source})
      if (next.statusCode === 200 || tries === 100) break
      await text(next)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(next.statusCode).toBe(200)
    expect(processAlive(pid)).toBe(false)
    expect(await text(next)).toContain('"slug":')
    expect(await names(join(home, 'builds'))).toEqual([])
  })
})
