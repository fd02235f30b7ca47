import {readFile} from 'node:fs/promises'
import {basename, join} from 'node:path'

import {z} from 'zod'

import {DevError} from '../runtime/dev-error.js'
import {APP_NAME} from '../agent/app-name.js'

/** `dev.json` at the app root, committed: which app this is on hosts, and which hosts it goes to. */
const ProjectFile = z.object({app: z.string().optional(), hosts: z.array(z.string().min(1)).optional()}).strict()

export interface ProjectTargets {
  app: string
  hosts: string[]
  /** Where the hosts came from, for messages. */
  hostsFrom: '--host' | 'DEV_HOST' | 'dev.json' | 'none'
}

/**
 * The app's name on hosts (`--app`, else `app` in dev.json, else `name` in app.json, else the
 * directory's name) and the hosts to work on (`--host`, else DEV_HOST, comma-separated, else
 * `hosts` in dev.json).
 */
export async function projectTargets({root, hosts, app, env = process.env, checkApp = 'always'}: {root: string; hosts?: readonly string[]; app?: string; env?: NodeJS.ProcessEnv; checkApp?: 'always' | 'with-hosts' | 'never'}): Promise<ProjectTargets> {
  const project = await readJsonFile(join(root, 'dev.json'), ProjectFile)
  const appJson = await readJsonFile(join(root, 'app.json'), z.object({name: z.string().optional()}).passthrough())
  const name = (app ?? project?.app ?? appJson?.name ?? basename(root)).toLowerCase()
  const targets = {app: name, ...hostsOf(hosts, env, project?.hosts)}
  // Only a name used on a host has to follow the hosts' rule (a local dev start has no app name).
  const check = checkApp === 'always' || (checkApp === 'with-hosts' && targets.hosts.length > 0)
  if (check && !APP_NAME.test(name)) throw new DevError(`"${name}" cannot name an app on a host: use 2-30 lower-case letters, digits and dashes, starting with a letter (set it with --app or "app" in dev.json)`)
  return targets
}

function hostsOf(hosts: readonly string[] | undefined, env: NodeJS.ProcessEnv, fromProject: readonly string[] | undefined): Pick<ProjectTargets, 'hosts' | 'hostsFrom'> {
  // A host named twice is one host (two deploys to it would fight over its lock); `--host a,b` is two.
  const unique = (list: readonly string[]) => [...new Set(list.flatMap((host) => host.split(',')).map((host) => host.trim()).filter(Boolean))]
  if (hosts !== undefined && unique(hosts).length > 0) return {hosts: unique(hosts), hostsFrom: '--host'}
  const fromEnv = unique([env.DEV_HOST ?? ''])
  if (fromEnv.length > 0) return {hosts: fromEnv, hostsFrom: 'DEV_HOST'}
  if (fromProject && unique(fromProject).length > 0) return {hosts: unique(fromProject), hostsFrom: 'dev.json'}
  return {hosts: [], hostsFrom: 'none'}
}

/** The hosts, or an error that says how to name them. */
export function requireHosts(targets: ProjectTargets): string[] {
  if (targets.hosts.length === 0) throw new DevError('no host to work on: pass --host HOST, set DEV_HOST=host1,host2, or list them in dev.json ({"hosts": ["vps1"]})')
  return targets.hosts
}

async function readJsonFile<T>(path: string, schema: z.ZodType<T>): Promise<T | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch {
    return undefined
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    throw new DevError(`${path}: not valid JSON (${(error as Error).message})`)
  }
  const parsed = schema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    throw new DevError(`${path}: ${issue.path.join('.') || 'the file'}: ${issue.message}`)
  }
  return parsed.data
}
