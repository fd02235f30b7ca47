import {createReadStream} from 'node:fs'
import {chmod, mkdir, rm} from 'node:fs/promises'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'

import {z} from 'zod'

import {agentPaths} from './agent-home.js'
import {AppError} from './app-error.js'
import {header, parseBody as parse, readJson, sendJson as send, type Route} from './api-route.js'
import type {AppStore, ReleasePlan} from './app-store.js'
import type {AgentSettings} from './agent-settings.js'
import type {DynoManager} from './dyno-manager.js'
import {RunRequest, runUpgradeHandler} from './one-off-run.js'
import {MAX_QUANTITY} from './formation-file.js'
import type {LogSink} from './log-sink.js'
import type {Release} from './release-ledger.js'
import {DeployLocks} from './deploy-lock.js'
import {SHA256, type SlugStore} from './slug-store.js'
import {PROCESS_NAME} from '../runtime/procfile.js'

/** The largest slug the host accepts (dev build refuses bigger ones too). */
const MAX_SLUG_BYTES = 1024 ** 3

const CreateApp = z.object({name: z.string()}).strict()
const PatchConfig = z.record(z.string(), z.string().nullable())
const CreateRelease = z.union(
  [
    z.object({slug: z.string().regex(SHA256, 'a slug is named by its sha256'), source_version: z.string().max(200).nullable().optional()}).strict(),
    z.object({rollback: z.number().int().positive()}).strict(),
  ],
  {error: 'give {"slug": SHA256} to deploy a slug, or {"rollback": N} to roll back to vN'},
)
const PatchFormation = z
  .object({updates: z.array(z.object({type: z.string().regex(PROCESS_NAME, 'a process type name'), quantity: z.number().int().min(0).max(MAX_QUANTITY)}).strict()).min(1)})
  .strict()

const DetachedRun = RunRequest.extend({attach: z.boolean().optional()})

/** Heroku's error ids for each status the API answers with. */
const ERROR_IDS: Record<number, string> = {400: 'bad_request', 404: 'not_found', 405: 'method_not_allowed', 409: 'conflict', 413: 'payload_too_large', 422: 'invalid_params'}

function errorId(status: number): string {
  return ERROR_IDS[status] ?? 'bad_request'
}

/** What the API serves: the stores and the dyno manager of one agent. */
export interface AgentParts {
  home: string
  apps: AppStore
  slugs: SlugStore
  dynos: DynoManager
  logFor: (app: string) => LogSink
  settings: AgentSettings
}

/**
 * The agent's HTTP API on its Unix socket (mode 0660): resources named like Heroku's Platform API.
 * Every answer is JSON; a bad request gets a 4xx with a message saying what was wrong.
 */
export async function startApiServer(agent: AgentParts, extraRoutes: readonly Route[] = []): Promise<Server> {
  const {home, apps, slugs, dynos, logFor, settings} = agent
  const paths = agentPaths(home)
  const locks = new DeployLocks()
  const slugPath = (sha256: string) => slugs.path(sha256)
  /** Puts the release's dynos in place before it is recorded (the zero-gap switch). */
  const activate = (app: string) => async (plan: ReleasePlan) => {
    try {
      await dynos.app(app).activate(plan)
    } catch (error) {
      if (error instanceof AppError) logFor(app).append('agent', 'api', `Release v${plan.v} not made: ${error.message}`)
      throw error
    }
  }
  /** After a release: its line in the log stream, then the files no release needs any more. */
  const released = async (app: string, release: Release) => {
    logFor(app).append('agent', 'api', `Release v${release.v} created by ${release.user}: ${release.description}`)
    await apps.collectGarbage(slugs.dir)
  }
  /** Refuses a change to an app whose deploy lock another connection holds. */
  const unlocked = async (app: string, req: IncomingMessage) => {
    const holder = locks.blocker(app, header(req, 'dev-lock'))
    if (holder) throw new AppError(409, `app ${app} is being deployed by ${holder.user} since ${holder.since}; wait, or retry when that deploy ends`)
  }
  const routes: Route[] = [
    [
      'POST',
      /^\/apps\/([^/]+)\/lock$/,
      async ({params, req, res, user}) => {
        const app = params[0]!
        await apps.config(app)
        const lock = locks.acquire(app, user)
        if (!lock.ok) throw new AppError(409, `app ${app} is being deployed by ${lock.holder.user} since ${lock.holder.since}`)
        // The answer stays open: the lock lasts as long as this connection.
        res.writeHead(200, {'content-type': 'application/json'})
        res.write(`${JSON.stringify(lock.holder)}\n`)
        req.socket.once('close', lock.release)
        return 'answered'
      },
    ],
    [
      'HEAD',
      /^\/slugs\/([^/]+)$/,
      async ({params, res}) => {
        res.writeHead((await slugs.has(params[0]!)) ? 200 : 404).end()
        return 'answered'
      },
    ],
    [
      'PUT',
      /^\/slugs\/([^/]+)$/,
      async ({params, req}) => {
        const {created} = await slugs.put(params[0]!, req, MAX_SLUG_BYTES)
        return {status: created ? 201 : 200, json: {sha256: params[0]}}
      },
    ],
    [
      'GET',
      /^\/slugs\/([^/]+)$/,
      async ({params, res}) => {
        const sha256 = params[0]!
        if (!(await slugs.has(sha256))) throw new AppError(404, `no slug ${sha256} on this host`)
        res.writeHead(200, {'content-type': 'application/gzip'})
        await new Promise<void>((resolve, reject) => createReadStream(slugs.path(sha256)).on('error', reject).pipe(res).on('finish', resolve))
        return 'answered'
      },
    ],
    ['GET', /^\/apps$/, async () => ({json: await apps.diskUsage()})],
    [
      'POST',
      /^\/apps$/,
      async ({body}) => {
        const {name} = parse(CreateApp, await body())
        await apps.create(name)
        return {status: 201, json: {name}}
      },
    ],
    ['GET', /^\/apps\/([^/]+)\/config-vars$/, async ({params}) => ({json: await apps.config(params[0]!)})],
    [
      'PATCH',
      /^\/apps\/([^/]+)\/config-vars$/,
      async ({body, params, user, req}) => {
        const app = params[0]!
        await unlocked(app, req)
        const {config, release} = await apps.patchConfig(app, parse(PatchConfig, await body()), user, slugPath, activate(app))
        await released(app, release)
        return {json: config}
      },
    ],
    ['GET', /^\/apps\/([^/]+)\/releases$/, async ({params}) => ({json: await apps.releases(params[0]!)})],
    [
      'POST',
      /^\/apps\/([^/]+)\/releases$/,
      async ({params, body, user, req}) => {
        await unlocked(params[0]!, req)
        const app = params[0]!
        const request = parse(CreateRelease, await body())
        let release
        if ('rollback' in request) {
          release = await apps.rollback(app, request.rollback, user, slugPath, activate(app))
        } else {
          if (!(await slugs.has(request.slug))) throw new AppError(404, `no slug ${request.slug} on this host; upload it first (PUT /slugs/${request.slug})`)
          release = await apps.deploy(app, {sha256: request.slug, sourceVersion: request.source_version}, user, slugPath, activate(app))
        }
        await released(app, release)
        return {status: 201, json: release}
      },
    ],
    ['GET', /^\/apps\/([^/]+)\/formation$/, async ({params}) => ({json: await dynos.app(await existing(params[0]!)).formationList()})],
    [
      'PATCH',
      /^\/apps\/([^/]+)\/formation$/,
      async ({params, body, user, req}) => {
        const app = await existing(params[0]!)
        await unlocked(app, req)
        const {updates} = parse(PatchFormation, await body())
        const changes = Object.fromEntries(updates.map(({type, quantity}) => [type, quantity]))
        await dynos.app(app).scale(changes)
        logFor(app).append('agent', 'api', `Scaled to ${updates.map(({type, quantity}) => `${type}@${quantity}`).join(' ')} by ${user}`)
        return {json: await dynos.app(app).formationList()}
      },
    ],
    ['GET', /^\/apps\/([^/]+)\/dynos$/, async ({params}) => ({json: dynos.app(await existing(params[0]!)).list()})],
    [
      'DELETE',
      /^\/apps\/([^/]+)\/dynos(?:\/([^/]+))?$/,
      async ({params, user, req}) => {
        const app = await existing(params[0]!)
        await unlocked(app, req)
        const target = params[1] || undefined
        const restarted = await dynos.app(app).restart(target)
        logFor(app).append('agent', 'api', `Restarted ${target ?? 'all dynos'} by ${user}`)
        return {json: {restarted}}
      },
    ],
    [
      'POST',
      /^\/apps\/([^/]+)\/dynos$/,
      async ({params, body, user}) => {
        const app = await existing(params[0]!)
        const {attach, ...request} = parse(DetachedRun, await body())
        if (attach !== false) throw new AppError(400, 'an attached run is an upgraded connection (Upgrade: dev-run, see docs/agent-api.md); send "attach": false to run it detached')
        const {name} = await dynos.app(app).startRun({...request, attach: false, user})
        return {status: 201, json: {name, attach: false}}
      },
    ],
    ...extraRoutes,
  ]
  /** The app's name, once it is known to exist (404 otherwise). */
  const existing = async (app: string) => {
    await apps.config(app)
    return app
  }

  const server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      const known = error instanceof AppError
      send(res, known ? error.status : 500, {id: known ? errorId(error.status) : 'internal', message: known ? error.message : 'internal error; see the agent log'})
      if (!known) console.error(error)
    })
  })

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://agent')
    const path = url.pathname
    const matching = routes.filter(([, pattern]) => pattern.test(path))
    if (matching.length === 0) throw new AppError(404, `no such resource: ${path}`)
    const route = matching.find(([method]) => method === req.method)
    if (!route) throw new AppError(405, `${req.method} is not allowed on ${path}; use ${matching.map(([method]) => method).join(' or ')}`)
    const params = route[1]
      .exec(path)!
      .slice(1)
      .map((param) => (param === undefined ? '' : decodeURIComponent(param)))
    const user = String(req.headers['dev-user'] ?? 'unknown')
    const result = await route[2]({req, res, body: () => readJson(req), user, params, query: url.searchParams})
    if (result !== 'answered') send(res, result.status ?? 200, result.json)
  }

  server.on('upgrade', runUpgradeHandler({dynosOf: async (app) => dynos.app(await existing(app)), graceMs: settings.stop_grace_seconds * 1000}))

  await mkdir(home, {recursive: true, mode: 0o700})
  await rm(paths.socket, {force: true})
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(paths.socket, resolve)
  })
  await chmod(paths.socket, 0o660)
  return server
}

