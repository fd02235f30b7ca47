import {readFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'

import {DevError} from '../runtime/dev-error.js'

/** Where and how to reach one host over SSH, as OpenSSH would resolve it. */
export interface SshTarget {
  /** What the user named (`vps1`, `deploy@10.0.0.5:2222`). */
  name: string
  hostname: string
  user: string
  port: number
  identityFiles: string[]
  identitiesOnly: boolean
  knownHostsFiles: string[]
  /** `yes` refuses unknown hosts, `accept-new` trusts them on first use; `ask` and `no` count as `yes`. */
  strictHostKeyChecking: 'yes' | 'accept-new'
  /** The name known_hosts lists the host under, when not its hostname. */
  hostKeyAlias?: string
  connectTimeoutMs: number
}

/** `[user@]host[:port]`, with `[v6]:port` for IPv6. */
const SPEC = /^(?:([A-Za-z0-9._-]+)@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/

/** Used when neither the config nor OpenSSH says. */
const DEFAULT_CONNECT_TIMEOUT_MS = 15_000

/**
 * Resolves `--host` with OpenSSH's own rules: `ssh -G` (config Includes, Match, tokens and
 * defaults included) when an `ssh` binary exists, else the ssh-config package on the same file.
 * `DEV_SSH_CONFIG` names another config file, as `ssh -F` would.
 */
export async function resolveSshTarget(spec: string, env: NodeJS.ProcessEnv = process.env): Promise<SshTarget> {
  const match = SPEC.exec(spec)
  if (match === null) throw new DevError(`"${spec}" is not a host: give an ssh config Host, or [user@]host[:port]`)
  const [, user, rawHost, rawPort] = match
  const host = rawHost!.replace(/^\[|\]$/g, '')
  const port = rawPort === undefined ? undefined : Number(rawPort)
  if (port !== undefined && (port < 1 || port > 65_535)) throw new DevError(`"${spec}": port ${rawPort} is out of range`)
  const configFile = env.DEV_SSH_CONFIG
  const settings = await sshDashG(host, {user, port, configFile}).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error
    return parsedConfig(host, {user, port, configFile: configFile ?? join(homedir(), '.ssh', 'config')})
  })
  const first = (key: string) => settings.get(key)?.[0]
  // Going straight to the host would bypass what the config says: refuse instead.
  for (const key of ['proxyjump', 'proxycommand']) {
    const value = first(key)
    if (value !== undefined && value.toLowerCase() !== 'none') throw new DevError(`${spec} is reached through ${key === 'proxyjump' ? 'ProxyJump' : 'ProxyCommand'} (${value}) in your ssh config, which dev cannot go through yet; use a host dev can reach directly`)
  }
  const home = homedir()
  const expand = (path: string) => (path.startsWith('~/') ? join(home, path.slice(2)) : path)
  const strict = first('stricthostkeychecking')?.toLowerCase()
  const timeout = Number(first('connecttimeout'))
  return {
    name: spec,
    hostname: first('hostname') ?? host,
    user: first('user') ?? user ?? env.USER ?? 'root',
    port: Number(first('port') ?? port ?? 22),
    identityFiles: (settings.get('identityfile') ?? []).map(expand),
    identitiesOnly: first('identitiesonly')?.toLowerCase() === 'yes',
    knownHostsFiles: (settings.get('userknownhostsfile') ?? ['~/.ssh/known_hosts']).flatMap((value) => value.split(/\s+/)).filter(Boolean).map(expand),
    strictHostKeyChecking: strict === 'accept-new' ? 'accept-new' : 'yes',
    hostKeyAlias: first('hostkeyalias'),
    connectTimeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout * 1000 : DEFAULT_CONNECT_TIMEOUT_MS,
  }
}

/** OpenSSH's resolved settings for a host: `key value` lines, keys lower case, repeated keys kept. */
async function sshDashG(host: string, {user, port, configFile}: {user?: string; port?: number; configFile?: string}): Promise<Map<string, string[]>> {
  // `--` ends the options: a host name can never be read as one.
  const argv = [...(configFile ? ['-F', configFile] : []), ...(user ? ['-l', user] : []), ...(port ? ['-p', String(port)] : []), '-G', '--', host]
  const result = await execa('ssh', argv, {reject: false, stdin: 'ignore', timeout: 10_000})
  if (result.failed && (result as {code?: string}).code === 'ENOENT') throw Object.assign(new Error('ssh not found'), {code: 'ENOENT'})
  if (result.exitCode !== 0) {
    const why = String(result.stderr || result.message || 'failed').split('\n')[0]
    throw new DevError(`cannot resolve host "${host}" with ssh -G: ${why}${configFile ? ` (config ${configFile})` : ''}`)
  }
  const settings = new Map<string, string[]>()
  for (const line of result.stdout.split('\n')) {
    const space = line.indexOf(' ')
    if (space === -1) continue
    const key = line.slice(0, space)
    settings.set(key, [...(settings.get(key) ?? []), line.slice(space + 1)])
  }
  return settings
}

/** The same from the config file itself, where no `ssh` binary is installed. */
async function parsedConfig(host: string, {user, port, configFile}: {user?: string; port?: number; configFile: string}): Promise<Map<string, string[]>> {
  const {default: SSHConfig} = await import('ssh-config')
  const text = await readFile(configFile, 'utf8').catch(() => '')
  // Match exec runs shell commands: never for a file we only read settings from.
  const computed = SSHConfig.parse(text).compute({Host: host, User: user}, {ignoreCase: true, matchExec: false} as never)
  const settings = new Map<string, string[]>()
  for (const [key, value] of Object.entries(computed)) settings.set(key.toLowerCase(), Array.isArray(value) ? value : [value])
  if (user !== undefined) settings.set('user', [user])
  if (port !== undefined) settings.set('port', [String(port)])
  if (!settings.has('identityfile')) settings.set('identityfile', ['~/.ssh/id_ed25519', '~/.ssh/id_ecdsa', '~/.ssh/id_rsa'])
  return settings
}
