import {readFile} from 'node:fs/promises'
import {request} from 'node:http'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {z} from 'zod'

import {DevError} from '../runtime/dev-error.js'

/**
 * One HTTP check of `healthchecks.web` in app.json, in Dokku's format. Only `startup` and
 * `readiness` checks gate a switch (`liveness` is for a running dyno, which the router does not
 * probe); a check without a `path` (Dokku's `command` and `uptime` kinds) is not an HTTP check.
 */
const CheckSchema = z
  .object({
    type: z.enum(['startup', 'readiness', 'liveness']).default('startup'),
    name: z.string().optional(),
    path: z.string().startsWith('/', 'a path starts with "/"').optional(),
    attempts: z.number().int().min(1).max(100).default(3),
    /** Seconds each attempt may take. */
    timeout: z.number().positive().max(300).default(5),
    /** Seconds between attempts. */
    wait: z.number().min(0).max(300).default(1),
    /** Seconds before the first attempt. */
    initialDelay: z.number().min(0).max(300).default(0),
    /** Text the answer's body must contain. */
    content: z.string().optional(),
  })
  .passthrough()

const AppJsonSchema = z
  .object({healthchecks: z.object({web: z.array(CheckSchema).optional()}).passthrough().optional()})
  .passthrough()

export type HealthCheck = z.infer<typeof CheckSchema> & {path: string}

/**
 * The HTTP checks a release's web dynos must pass before they take traffic, from `app.json` at the
 * root of the release; none when it has no app.json or declares none. A broken app.json is an
 * error that names it (the release is refused, nothing switched).
 */
export async function readWebHealthChecks(dir: string, label: string): Promise<HealthCheck[]> {
  let text: string
  try {
    text = await readFile(join(dir, 'app.json'), 'utf8')
  } catch {
    return []
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    throw new DevError(`${label}: not valid JSON (${(error as Error).message}); fix app.json`)
  }
  const parsed = AppJsonSchema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    throw new DevError(`${label}: ${issue.path.join('.')}: ${issue.message}; see Dokku's healthchecks format`)
  }
  return (parsed.data.healthchecks?.web ?? []).filter((check): check is HealthCheck => check.path !== undefined && check.type !== 'liveness')
}

/** Where a check goes: the dyno's port and loopback address, and the Host header it carries. */
export interface DynoAddress {
  port: number
  address: string
  host: string
}

/**
 * Runs `check` against a dyno on `port` until it passes (a 2xx whose body holds `content`, when
 * given) or its attempts run out, or `signal` aborts. Resolves to undefined when it passed, else to
 * why the last attempt failed.
 */
export async function runHealthCheck(check: HealthCheck, dyno: DynoAddress, signal: AbortSignal): Promise<string | undefined> {
  if (check.initialDelay > 0) await sleep(check.initialDelay * 1000, undefined, {signal}).catch(() => {})
  let why = 'not tried'
  for (let attempt = 1; attempt <= check.attempts && !signal.aborted; attempt++) {
    if (attempt > 1) await sleep(check.wait * 1000, undefined, {signal}).catch(() => {})
    if (signal.aborted) break
    why = await probe(check, dyno, signal)
    if (why === '') return undefined
    why = `attempt ${attempt} of ${check.attempts}: ${why}`
  }
  return `GET ${check.path} failed (${why})`
}

/** One attempt: '' when it passed, else what went wrong. */
function probe(check: HealthCheck, {port, address, host}: DynoAddress, signal: AbortSignal): Promise<string> {
  return new Promise((resolve) => {
    const req = request({host: address, port, path: check.path, headers: {host, 'user-agent': 'dev-health-check'}, agent: false, signal, timeout: check.timeout * 1000}, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        if (body.length < 1024 * 1024) body += chunk
      })
      res.on('end', () => {
        const status = res.statusCode ?? 0
        if (status < 200 || status > 299) resolve(`status ${status}`)
        else if (check.content !== undefined && !body.includes(check.content)) resolve(`the answer does not contain "${check.content}"`)
        else resolve('')
      })
      res.on('error', (error) => resolve(error.message))
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${check.timeout} s`)))
    req.on('error', (error) => resolve(error.message))
    req.end()
  })
}
