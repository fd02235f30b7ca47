import type {IncomingMessage} from 'node:http'

import {answerOf, readText, type AgentAnswer, type AgentClient} from '../runtime/agent-client.js'
import {DevError} from '../runtime/dev-error.js'
import type {DynoInfo, FormationItem} from '../runtime/dyno-api.js'

export interface Release {
  v: number
  slug: string | null
  config: Record<string, string>
  source_version?: string | null
  description: string
  user: string
  created_at: string
}

/** How the router treats the app. */
export interface AppRouting {
  name: string
  maintenance: boolean
  request_timeout_seconds: number
  idle_timeout_seconds: number
  domains: string[]
  /** Requests whose Host names no domain come to it: it is the only app serving on the host. */
  every_host: boolean
}

/** What `patchRouting` may change. */
export interface RoutingChange {
  maintenance?: boolean
  request_timeout_seconds?: number | null
  idle_timeout_seconds?: number | null
}

/**
 * The app's resources in the agent API (docs/agent-api.md), as typed calls that throw a DevError
 * naming the target when the answer is not the one expected.
 */
export class AppApi {
  constructor(
    readonly client: AgentClient,
    readonly app: string,
  ) {}

  dynos(): Promise<DynoInfo[]> {
    return this.expect(200, 'GET', `${this.base}/dynos`)
  }

  formation(): Promise<FormationItem[]> {
    return this.expect(200, 'GET', `${this.base}/formation`)
  }

  scale(quantities: Record<string, number>): Promise<FormationItem[]> {
    const updates = Object.entries(quantities).map(([type, quantity]) => ({type, quantity}))
    return this.expect(200, 'PATCH', `${this.base}/formation`, {updates})
  }

  /** Restarts every dyno, one type's, or one dyno; the names restarted. */
  async restart(target?: string): Promise<string[]> {
    const path = target === undefined ? `${this.base}/dynos` : `${this.base}/dynos/${encodeURIComponent(target)}`
    return ((await this.expect(200, 'DELETE', path)) as {restarted: string[]}).restarted
  }

  async stop(dyno: string): Promise<string> {
    return ((await this.expect(200, 'POST', `${this.base}/dynos/${encodeURIComponent(dyno)}/actions/stop`)) as {stopped: string}).stopped
  }

  configVars(): Promise<Record<string, string>> {
    return this.expect(200, 'GET', `${this.base}/config-vars`)
  }

  /** Sets (a string) or unsets (null) config vars: one release; the new config. */
  patchConfig(changes: Record<string, string | null>, options: {restart?: boolean} = {}): Promise<Record<string, string>> {
    return this.expect(200, 'PATCH', `${this.base}/config-vars${options.restart === false ? '?restart=0' : ''}`, changes)
  }

  releases(): Promise<Release[]> {
    return this.expect(200, 'GET', `${this.base}/releases`)
  }

  release(v: number): Promise<Release> {
    return this.expect(200, 'GET', `${this.base}/releases/v${v}`)
  }

  rollback(to: number): Promise<Release> {
    return this.expect(201, 'POST', `${this.base}/releases`, {rollback: to})
  }

  routing(): Promise<AppRouting> {
    return this.expect(200, 'GET', this.base)
  }

  /** Changes how the router treats the app; a timeout of null goes back to its default. */
  patchRouting(change: RoutingChange): Promise<AppRouting> {
    return this.expect(200, 'PATCH', this.base, change)
  }

  destroy(): Promise<{name: string}> {
    return this.expect(200, 'DELETE', this.base)
  }

  /** The merged log stream, read as it comes (`tail` keeps it open). */
  async log(query: {lines?: number; tail?: boolean; ps?: string; source?: string}): Promise<IncomingMessage> {
    const params = new URLSearchParams()
    if (query.lines !== undefined) params.set('lines', String(query.lines))
    if (query.tail) params.set('tail', '1')
    if (query.ps !== undefined) params.set('ps', query.ps)
    if (query.source !== undefined) params.set('source', query.source)
    const res = await this.client.request('GET', `${this.base}/log?${params}`)
    if (res.statusCode !== 200) throw failure(this.client, this.app, answerOf(res.statusCode ?? 0, await readText(res)))
    return res
  }

  private get base(): string {
    return `/apps/${encodeURIComponent(this.app)}`
  }

  private async expect<T>(status: number, method: string, path: string, body?: unknown): Promise<T> {
    const answer = await this.client.call(method, path, body)
    if (answer.status !== status) throw failure(this.client, this.app, answer)
    return answer.json as T
  }
}

/** The agent's own message for a refused call, with the target's name; a missing app says what to do. */
function failure(client: AgentClient, app: string, answer: AgentAnswer): DevError {
  const message = String(answer.json?.message ?? answer.text).trim() || `status ${answer.status}`
  if (answer.status === 404 && /^no app /.test(message)) return new DevError(`${client.name}: there is no app ${app} here; deploy it first (dev deploy), or name another with --app`)
  return new DevError(`${client.name}: ${message}`)
}
