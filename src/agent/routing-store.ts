import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {domainToASCII} from 'node:url'

import {z} from 'zod'

import {writeFileAtomic} from '../runtime/atomic-write.js'
import {AppError} from './app-error.js'

/** How the router treats one app: `apps/<app>/routing.json`. */
const RoutingSchema = z.object({
  domains: z.array(z.object({hostname: z.string(), created_at: z.string()})).default([]),
  maintenance: z.boolean().default(false),
  /** No first byte from a dyno within this long: H12 (Heroku's fixed 30 s, made per app). */
  request_timeout_seconds: z.number().positive().max(3600).default(30),
  /** An answer under way, or a WebSocket, on which no byte moves for this long is cut: H15 (Heroku's fixed 55 s, made per app). */
  idle_timeout_seconds: z.number().int().positive().max(3600).default(55),
})
export type Routing = z.infer<typeof RoutingSchema>

/** An app's routing until it is changed: asked for on every request, so made once. */
const DEFAULT_ROUTING: Routing = Object.freeze(RoutingSchema.parse({}))

/** What `PATCH /apps/:app` may change; a timeout of `null` goes back to its default. */
export const RoutingChange = z
  .object({
    maintenance: z.boolean().optional(),
    // At least a millisecond: a timeout of less would fail every request.
    request_timeout_seconds: z.number().min(0.001).max(3600).nullable().optional(),
    idle_timeout_seconds: z.number().int().positive().max(3600).nullable().optional(),
  })
  .strict()
export type RoutingChange = z.infer<typeof RoutingChange>

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/

/**
 * A hostname as the router matches it: lower case, punycode for a name with non-ASCII letters
 * (`éso.com` → `xn--so-9la.com`), and `*.` in front for a wildcard. Anything else is a 422.
 */
export function normaliseHostname(given: string): string {
  const wildcard = given.startsWith('*.')
  // A fully qualified name (`www.example.com.`) is the same name.
  const name = wildcard ? given.slice(2) : given
  const ascii = domainToASCII(name.endsWith('.') ? name.slice(0, -1) : name)
  const labels = ascii.split('.')
  if (ascii === '' || ascii.length > 253 || labels.length < 2 || !labels.every((label) => LABEL.test(label))) {
    throw new AppError(422, `"${given.slice(0, 100)}" is not a hostname; give one like www.example.com or *.example.com`)
  }
  return wildcard ? `*.${ascii}` : ascii
}

/**
 * The routing of every app on the host, and its domains for the router: an exact domain first,
 * then the longest wildcard that matches. A domain belongs to one app.
 */
export class RoutingStore {
  private readonly apps = new Map<string, Routing>()
  private readonly exact = new Map<string, string>()
  private readonly wildcards = new Map<string, string>()
  /** Changes are written one at a time, so two never race on one file. */
  private queue: Promise<unknown> = Promise.resolve()

  constructor(private readonly appDir: (app: string) => string) {}

  /** Reads every app's routing.json (a missing or broken one means the defaults, said on stderr). */
  async load(apps: readonly string[]): Promise<void> {
    for (const app of apps) this.apps.set(app, await this.read(app))
    this.reindex()
  }

  get(app: string): Routing {
    return this.apps.get(app) ?? DEFAULT_ROUTING
  }

  /** The app whose domain a request's Host (lower case, no port) is. */
  appFor(host: string): string | undefined {
    const exact = this.exact.get(host)
    if (exact !== undefined) return exact
    if (this.wildcards.size > 0) {
      for (let dot = host.indexOf('.'); dot !== -1; dot = host.indexOf('.', dot + 1)) {
        const app = this.wildcards.get(host.slice(dot + 1))
        if (app !== undefined) return app
      }
    }
    return undefined
  }

  addDomain(app: string, given: string): Promise<{hostname: string; created_at: string}> {
    return this.change(app, (routing) => {
      const hostname = normaliseHostname(given)
      const owner = this.ownerOf(hostname)
      if (owner === app) throw new AppError(409, `${hostname} is already a domain of ${app}`)
      if (owner !== undefined) throw new AppError(409, `${hostname} is a domain of another app on this host; remove it there first`)
      const domain = {hostname, created_at: new Date().toISOString()}
      return [{...routing, domains: [...routing.domains, domain]}, domain]
    })
  }

  removeDomain(app: string, given: string): Promise<{hostname: string; created_at: string}> {
    return this.change(app, (routing) => {
      const hostname = normaliseHostname(given)
      const domain = routing.domains.find((each) => each.hostname === hostname)
      if (domain === undefined) throw new AppError(404, `${hostname} is not a domain of ${app}`)
      return [{...routing, domains: routing.domains.filter((each) => each !== domain)}, domain]
    })
  }

  /** Applies `change`; the routing just before it (read in turn with other changes) and after. */
  update(app: string, change: RoutingChange): Promise<{before: Routing; after: Routing}> {
    return this.change(app, (before) => {
      // A null leaves the setting out, so the schema's default fills it.
      const merged: Record<string, unknown> = {...before, ...change}
      for (const [key, value] of Object.entries(change)) if (value === null) delete merged[key]
      const after = RoutingSchema.parse(merged)
      return [after, {before, after}]
    })
  }

  /** A destroyed app: its domains are free for another app, and no Host leads to it any more. */
  forget(app: string): Promise<void> {
    const result = this.queue.then(() => {
      this.apps.delete(app)
      this.reindex()
    })
    this.queue = result.catch(() => {})
    return result
  }

  private ownerOf(hostname: string): string | undefined {
    return hostname.startsWith('*.') ? this.wildcards.get(hostname.slice(2)) : this.exact.get(hostname)
  }

  private change<T>(app: string, apply: (routing: Routing) => [Routing, T]): Promise<T> {
    const result = this.queue.then(async () => {
      const [next, answer] = apply(this.get(app))
      await writeFileAtomic(this.path(app), `${JSON.stringify(next, null, 2)}\n`, 0o600)
      this.apps.set(app, next)
      this.reindex()
      return answer
    })
    this.queue = result.catch(() => {})
    return result
  }

  private reindex(): void {
    this.exact.clear()
    this.wildcards.clear()
    for (const [app, routing] of this.apps) {
      for (const {hostname} of routing.domains) {
        if (hostname.startsWith('*.')) this.wildcards.set(hostname.slice(2), app)
        else this.exact.set(hostname, app)
      }
    }
  }

  private path(app: string): string {
    return join(this.appDir(app), 'routing.json')
  }

  private async read(app: string): Promise<Routing> {
    const text = await readFile(this.path(app), 'utf8').catch(() => '{}')
    try {
      const parsed = RoutingSchema.safeParse(JSON.parse(text))
      if (parsed.success) return parsed.data
    } catch {
      // Reported below.
    }
    process.stderr.write(`dev-agent: ${this.path(app)} is not valid; ${app} is routed with the defaults until it is fixed\n`)
    return DEFAULT_ROUTING
  }
}
