import {chmod, mkdir, open, rm} from 'node:fs/promises'
import {createServer, type IncomingMessage} from 'node:http'
import type {Duplex} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {z} from 'zod'

import {agentPaths} from './agent-home.js'
import {AppError, DISK_FULL_MESSAGE, isDiskFull} from './app-error.js'
import {errorId, header, parseBody as parse, sendJson as send, type Route} from './api-route.js'
import type {AppStore, ReleasePlan} from './app-store.js'
import type {AgentSettings} from './agent-settings.js'
import type {DynoManager} from './dyno-manager.js'
import {RunRequest, runUpgradeHandler} from './one-off-run.js'
import type {LogSink} from './log-sink.js'
import type {Release} from './release-ledger.js'
import {DeployLocks} from './deploy-lock.js'
import {SHA256, type SlugStore} from './slug-store.js'
import {PatchFormation} from '../runtime/dyno-api.js'
import {dispatchRoute} from '../runtime/route-dispatch.js'

/** The largest slug the host accepts (dev build refuses bigger ones too). */
const MAX_SLUG_BYTES = 1024 ** 3

// Capped before the store's own check, whose message repeats the name: a 1 MB name is no message.
const CreateApp = z.object({name: z.string().max(30, 'an app name is 2-30 lower-case letters, digits and dashes, starting with a letter')}).strict()
const PatchConfig = z.record(z.string(), z.string().nullable())
const CreateRelease = z.union(
  [
    z.object({slug: z.string().regex(SHA256, 'a slug is named by its sha256'), source_version: z.string().max(200).nullable().optional(), release_phase: z.boolean().optional(), description: z.string().min(1).max(200).optional()}).strict(),
    z.object({rollback: z.number().int().positive()}).strict(),
  ],
  {error: 'give {"slug": SHA256} to deploy a slug, or {"rollback": N} to roll back to vN'},
)

const DetachedRun = RunRequest.extend({attach: z.boolean().optional()})

/** A version in a release's URL: `v3` or `3`. */
const VERSION = /^v?([1-9]\d*)$/

/** What the API serves: the stores and the dyno manager of one agent. */
export interface AgentParts {
  home: string
  apps: AppStore
  slugs: SlugStore
  dynos: DynoManager
  logFor: (app: string) => LogSink
  settings: AgentSettings
  /** Stops and removes everything of an app (see app-destroy.ts). */
  destroyApp: (app: string) => Promise<void>
}

/** The running API, as the daemon stops it. */
export interface ApiServer {
  /** Stops taking connections and cuts the open ones (held locks, log tails), except attached runs. */
  close(): void
  /** Cuts the connections of attached runs still open; a run still going gets SIGHUP, as when its client goes. */
  closeAttached(): void
}

/**
 * The agent's HTTP API on its Unix socket (mode 0660): resources named like Heroku's Platform API.
 * Every answer is JSON; a bad request gets a 4xx with a message saying what was wrong.
 */
export async function startApiServer(agent: AgentParts, extraRoutes: readonly Route[] = []): Promise<ApiServer> {
  const {home, apps, slugs, dynos, logFor, settings, destroyApp} = agent
  const paths = agentPaths(home)
  const locks = new DeployLocks()
  const slugPath = (sha256: string) => slugs.path(sha256)
  /** Puts the release's dynos in place before it is recorded (the zero-gap switch). */
  const activate = (app: string) => async (plan: ReleasePlan, commit: () => Promise<void>) => {
    try {
      await dynos.app(app).activate(plan, commit)
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
  /**
   * Makes a change to an app in its turn, refused if another connection holds its deploy lock by
   * then, or if the app was destroyed meanwhile (404).
   */
  const change = <T>(app: string, req: IncomingMessage, work: () => Promise<T>) =>
    locks.change(app, header(req, 'dev-lock'), async () => {
      await existing(app)
      return work()
    })
  /** A slug's id from the URL: its sha256, never a path of any other shape. */
  const slugId = (id: string) => {
    if (!SHA256.test(id)) throw new AppError(400, `invalid slug id "${id}": a slug is named by its sha256 (64 hex digits)`)
    return id
  }
  const routes: Route[] = [
    [
      'POST',
      /^\/apps\/([^/]+)\/lock$/,
      async ({params, req, res, user}) => {
        const app = params[0]!
        // The lock lasts as long as this connection, which may close while the app is looked up:
        // the listener is there before anything waits.
        let lock: ReturnType<DeployLocks['acquire']> | undefined
        const release = () => lock?.ok && lock.release()
        req.socket.once('close', release)
        try {
          await apps.config(app)
          lock = locks.acquire(app, user)
          if (!lock.ok) throw new AppError(409, `app ${app} is being deployed by ${lock.holder.user} since ${lock.holder.since}`)
        } catch (error) {
          // The connection may go on to serve other requests (keep-alive); this one holds nothing.
          req.socket.off('close', release)
          throw error
        }
        if (req.socket.destroyed) {
          lock.release()
          return 'answered'
        }
        // The answer stays open.
        res.writeHead(200, {'content-type': 'application/json'})
        res.write(`${JSON.stringify(lock.holder)}\n`)
        return 'answered'
      },
    ],
    [
      'HEAD',
      /^\/slugs\/([^/]+)$/,
      async ({params, res}) => {
        // A slug the client is told is here must still be here when it deploys it.
        res.writeHead((await slugs.touch(slugId(params[0]!))) ? 200 : 404).end()
        return 'answered'
      },
    ],
    [
      'PUT',
      /^\/slugs\/([^/]+)$/,
      async ({params, req}) => {
        const sha256 = slugId(params[0]!)
        const {created} = await slugs.put(sha256, req, MAX_SLUG_BYTES)
        return {status: created ? 201 : 200, json: {sha256}}
      },
    ],
    [
      'GET',
      /^\/slugs\/([^/]+)$/,
      async ({params, res}) => {
        const sha256 = slugId(params[0]!)
        // Opened before answering: a slug collected meanwhile is a 404, not a cut-off download.
        const file = await open(slugs.path(sha256)).catch(() => undefined)
        if (file === undefined) throw new AppError(404, `no slug ${sha256} on this host`)
        res.writeHead(200, {'content-type': 'application/gzip'})
        // A client that goes away mid-download ends the pipeline, which closes the file.
        await pipeline(file.createReadStream(), res)
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
    [
      'DELETE',
      /^\/apps\/([^/]+)$/,
      async ({params, req, user}) => {
        const app = await existing(params[0]!)
        await change(app, req, () => destroyApp(app))
        // The app's log went with it: the agent's own output says who destroyed it.
        process.stderr.write(`dev-agent: app ${app} destroyed by ${user}\n`)
        return {json: {name: app}}
      },
    ],
    ['GET', /^\/apps\/([^/]+)\/config-vars$/, async ({params}) => ({json: await apps.config(params[0]!)})],
    [
      'PATCH',
      /^\/apps\/([^/]+)\/config-vars$/,
      async ({body, params, user, req, query}) => {
        const app = params[0]!
        const changes = parse(PatchConfig, await body())
        // ?restart=0: the release is made, the running dynos keep their config until they restart.
        const restart = !['0', 'false'].includes(query.get('restart') ?? '')
        const apply = restart ? activate(app) : (plan: ReleasePlan, commit: () => Promise<void>) => dynos.app(app).adoptRelease(plan, commit)
        const {config, release} = await change(app, req, () => apps.patchConfig(app, changes, user, slugPath, apply))
        await released(app, release)
        return {json: config}
      },
    ],
    ['GET', /^\/apps\/([^/]+)\/releases$/, async ({params}) => ({json: await apps.releases(params[0]!)})],
    [
      'GET',
      /^\/apps\/([^/]+)\/releases\/([^/]+)$/,
      async ({params: [app, version]}) => {
        const releases = await apps.releases(app!)
        const v = VERSION.exec(version!)?.[1]
        if (v === undefined) throw new AppError(404, `app ${app} has no release ${version}; name one as v2 or 2`)
        const release = releases.find((each) => each.v === Number(v))
        if (release === undefined) throw new AppError(404, `app ${app} has no release v${v}`)
        return {json: release}
      },
    ],
    [
      'POST',
      /^\/apps\/([^/]+)\/releases$/,
      async ({params, body, user, req}) => {
        const app = params[0]!
        const request = parse(CreateRelease, await body())
        const release = await change(app, req, async () => {
          if ('rollback' in request) return apps.rollback(app, request.rollback, user, slugPath, activate(app))
          if (!(await slugs.has(request.slug))) throw new AppError(404, `no slug ${request.slug} on this host; upload it first (PUT /slugs/${request.slug})`)
          return apps.deploy(app, {sha256: request.slug, sourceVersion: request.source_version, releasePhase: request.release_phase, message: request.description}, user, slugPath, activate(app))
        })
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
        const {updates} = parse(PatchFormation, await body())
        const quantities = Object.fromEntries(updates.map(({type, quantity}) => [type, quantity]))
        await change(app, req, () => dynos.app(app).scale(quantities))
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
        const target = params[1] || undefined
        const restarted = await change(app, req, () => dynos.app(app).restart(target))
        logFor(app).append('agent', 'api', `Restarted ${target ?? 'all dynos'} by ${user}`)
        return {json: {restarted}}
      },
    ],
    [
      'POST',
      /^\/apps\/([^/]+)\/dynos\/([^/]+)\/actions\/stop$/,
      async ({params, user, req}) => {
        const app = await existing(params[0]!)
        const dyno = params[1]!
        await change(app, req, () => dynos.app(app).stop(dyno))
        logFor(app).append('agent', 'api', `Stopped ${dyno} by ${user}`)
        return {json: {stopped: dyno}}
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
    void dispatchRoute(routes, req, res).catch((thrown: unknown) => {
      const error = isDiskFull(thrown) ? new AppError(507, DISK_FULL_MESSAGE) : thrown
      const known = error instanceof AppError
      // A client gone mid-answer (an abandoned download) is no error of the agent's.
      const clientGone = (error as NodeJS.ErrnoException | undefined)?.code === 'ERR_STREAM_PREMATURE_CLOSE'
      if (!known && !clientGone) console.error(error)
      // Once an answer has started, no error answer can follow it: the connection is cut instead.
      if (res.headersSent) res.destroy()
      else send(res, known ? error.status : 500, {id: errorId(known ? error.status : 500), message: known ? error.message : 'internal error; see the agent log'})
    })
  })
  // Clients come over SSH (dial-stdio) and keep their connection between calls: no idle cut, and no
  // limit on how long an upload of a big slug over a slow link may take.
  server.keepAliveTimeout = 0
  server.requestTimeout = 0

  // closeAllConnections does not reach upgraded connections, and server.close waits for them.
  const attached = new Set<Duplex>()
  const upgrade = runUpgradeHandler({dynosOf: async (app) => dynos.app(await existing(app)), logFor, graceMs: settings.stop_grace_seconds * 1000})
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    attached.add(socket)
    socket.once('close', () => attached.delete(socket))
    upgrade(req, socket, head)
  })

  await mkdir(home, {recursive: true, mode: 0o700})
  await rm(paths.socket, {force: true})
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(paths.socket, resolve)
  })
  await chmod(paths.socket, 0o660)
  return {
    close() {
      server.close()
      server.closeAllConnections()
    },
    closeAttached() {
      for (const socket of attached) socket.destroy()
    },
  }
}

