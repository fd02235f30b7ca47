import {z} from 'zod'

import {parseBody, type Route} from './api-route.js'
import type {AppStore} from './app-store.js'
import {SHA256} from './blob-store.js'
import {HostBuilds, type HostBuild} from './host-build.js'

/** The largest source archive the host accepts. */
const MAX_SOURCE_BYTES = 1024 ** 3

const CreateBuild = z
  .object({
    source: z.string().regex(SHA256, 'a source archive is named by its sha256'),
    source_version: z.object({commit: z.string().nullable(), dirty: z.boolean()}).strict().optional(),
  })
  .strict()

export interface BuildRoutesDeps {
  home: string
  apps: AppStore
  /** The command that starts a build worker (tests run it from the TypeScript sources). */
  worker?: readonly string[]
  /** The agent's builds, when others need them too (destroying an app waits for none). */
  builds?: HostBuilds
}

/**
 * Building on the host: source archives are uploaded content-addressed (`HEAD`/`PUT
 * /sources/<sha256>`), then `POST /apps/<app>/builds` builds one and streams its output as NDJSON:
 * `{"line": ...}` per output line, then `{"slug": MANIFEST}` or `{"error": MESSAGE}`. A client
 * that disconnects stops its build.
 */
export function buildRoutes({home, apps, worker, builds = new HostBuilds({home, apps, worker})}: BuildRoutesDeps): Route[] {
  return [
    [
      'HEAD',
      /^\/sources\/([^/]+)$/,
      async ({params, res}) => {
        // A source the client is told is here must still be here when it asks for the build.
        res.writeHead((await builds.sources.touch(params[0]!)) ? 200 : 404).end()
        return 'answered'
      },
    ],
    [
      'PUT',
      /^\/sources\/([^/]+)$/,
      async ({params, req}) => {
        const {created} = await builds.sources.put(params[0]!, req, MAX_SOURCE_BYTES)
        return {status: created ? 201 : 200, json: {sha256: params[0]}}
      },
    ],
    [
      'POST',
      /^\/apps\/([^/]+)\/builds$/,
      async ({params, body, res}) => {
        const request = parseBody(CreateBuild, await body())
        const stream = () => {
          if (res.headersSent) return
          res.writeHead(200, {'content-type': 'application/x-ndjson'})
          res.flushHeaders()
        }
        let build: HostBuild | undefined
        let held = false
        const send = (event: object) => {
          stream()
          if (res.destroyed || res.write(`${JSON.stringify(event)}\n`) || held) return
          // A slow reader holds the build back instead of filling the agent's memory.
          held = true
          build?.pause()
          res.once('drain', () => {
            held = false
            build?.resume()
          })
        }
        // Refusals (unknown app or source, a build already running) are answered before streaming starts.
        build = await builds.start({app: params[0]!, source: request.source, sourceVersion: request.source_version}, (line) => send({line}))
        stream()
        res.once('close', () => {
          if (!res.writableEnded) build.abort()
        })
        await build.result.then(
          (slug) => send({slug}),
          (error: Error) => send({error: error.message}),
        )
        res.end()
        return 'answered'
      },
    ],
  ]
}
