import {readFile} from 'node:fs/promises'

import {z} from 'zod'

import {DevError} from '../runtime/dev-error.js'
import {agentPaths} from './agent-home.js'

const seconds = z.number().positive()

/** `agent.json`: the host's settings. Every field is optional; the defaults are DESIGN.md's. */
const SettingsSchema = z
  .object({
    /** Where the router takes HTTP requests (0: any free port, said in the agent's start line). */
    router_port: z.number().int().min(0).max(65_535).default(80),
    /** The address it listens on; unset, every address of the host. */
    router_host: z.string().min(1).optional(),
    dyno_port_range: z
      .tuple([z.number().int().min(1024).max(65_535), z.number().int().min(1024).max(65_535)])
      .refine(([from, to]) => from <= to, 'the first port must not be above the last')
      .default([20_000, 29_999]),
    /** SIGTERM → SIGKILL. */
    stop_grace_seconds: seconds.default(30),
    /** A web dyno must accept on its PORT this soon after it starts (R10). */
    boot_timeout_seconds: seconds.default(60),
    /** All new web dynos of a release must be up this soon, or the release is not made. */
    deploy_timeout_seconds: seconds.default(60),
    /** Old web dynos finish their requests in flight for up to this long before their SIGTERM. */
    drain_timeout_seconds: seconds.default(30),
    restart_backoff: z
      .object({initial_seconds: seconds.default(1), max_seconds: seconds.default(300), reset_after_seconds: seconds.default(600)})
      .strict()
      .default({initial_seconds: 1, max_seconds: 300, reset_after_seconds: 600}),
    /** The release phase (Procfile `release`) is killed after this long, and the release refused. */
    release_timeout_seconds: seconds.default(3600),
    /** A detached one-off run is killed after this long. */
    detached_run_timeout_seconds: seconds.default(24 * 60 * 60),
  })
  .strict()

export type AgentSettings = z.infer<typeof SettingsSchema>

/** Reads `$DEV_AGENT_HOME/agent.json`; a missing file means every default. */
export async function readAgentSettings(home: string): Promise<AgentSettings> {
  const path = agentPaths(home).settings
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return '{}'
    throw error
  })
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new DevError(`${path} is not JSON; fix it or remove it to use the defaults`)
  }
  const parsed = SettingsSchema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    throw new DevError(`${path}: ${issue.path.join('.') || 'settings'}: ${issue.message}`)
  }
  return parsed.data
}
