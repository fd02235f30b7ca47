import {readFile} from 'node:fs/promises'

import ssh2, {type AuthMethod, type Client as SshClient, type ClientChannel} from 'ssh2'

import {DevError} from '../runtime/dev-error.js'
import {addHostKey, checkHostKey, fingerprint, keyType, knownHostsName, knownKeyTypes} from './known-hosts.js'
import type {SshTarget} from './ssh-target.js'

export interface ConnectOptions {
  /** Trust an unknown host key and add it to known_hosts (`--accept-new-host-key`). */
  acceptNewHostKey?: boolean
  /** Asks for an encrypted key's passphrase; absent when there is no terminal to ask on. */
  askPassphrase?: (file: string) => Promise<string>
  env?: NodeJS.ProcessEnv
}

// ssh2 is CommonJS without named exports Node can see.
const {Client, utils} = ssh2

/** How often an idle connection is probed, so a dead host is noticed during a long deploy. */
const KEEPALIVE_MS = 15_000

/**
 * One SSH connection to a host, with the host key checked against known_hosts before anything is
 * sent: an unknown key is refused (with its fingerprint and how to trust it) unless accept-new is
 * asked for, a changed key always is. Authenticates with ssh-agent, then the identity files.
 */
export async function connectSsh(target: SshTarget, options: ConnectOptions = {}): Promise<SshConnection> {
  const env = options.env ?? process.env
  const name = target.hostKeyAlias ?? knownHostsName(target.hostname, target.port)
  const auth = await authMethods(target, options, env)
  const preferred = hostKeyAlgorithms(await knownKeyTypes(target.knownHostsFiles, name))
  let hostKeyProblem: string | undefined
  const client = new Client()
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve())
    client.once('error', (error: Error & {level?: string; code?: string}) => reject(connectError(target, error, hostKeyProblem, auth)))
    client.connect({
      host: target.hostname,
      port: target.port,
      username: target.user,
      readyTimeout: target.connectTimeoutMs,
      keepaliveInterval: KEEPALIVE_MS,
      keepaliveCountMax: 3,
      authHandler: auth.methods,
      // Ask first for a key of a type known_hosts has for the host, so a host with several keys
      // shows the one we know, and any other key means a change.
      algorithms: {serverHostKey: preferred as never},
      hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => {
        void checkHostKey(target.knownHostsFiles, name, key).then(
          async (verdict) => {
            if (verdict.status === 'known') return verify(true)
            const shown = `${keyType(key)} ${fingerprint(key)}`
            if (verdict.status === 'changed') {
              hostKeyProblem = `the host key of ${target.name} (${name}) has changed: it is now ${shown}, known_hosts (${verdict.where}) has ${verdict.knownFingerprint}. Someone may be intercepting the connection; if the host was reinstalled, remove the old key with \`ssh-keygen -R '${name}'\` and connect again`
              return verify(false)
            }
            if (options.acceptNewHostKey || target.strictHostKeyChecking === 'accept-new') {
              const file = target.knownHostsFiles.find((each) => each !== 'none')
              try {
                if (file === undefined) throw new Error('UserKnownHostsFile is none')
                await addHostKey(file, name, key)
              } catch (error) {
                hostKeyProblem = `cannot add the key of ${target.name} to known_hosts: ${(error as Error).message}`
                return verify(false)
              }
              return verify(true)
            }
            hostKeyProblem = `${target.name} (${name}) is not a known host: its key is ${shown}. If that is the key of your server, trust it with --accept-new-host-key (or \`ssh ${target.name}\` once)`
            verify(false)
          },
          (error: Error) => {
            hostKeyProblem = `cannot read known_hosts: ${error.message}`
            verify(false)
          },
        )
      },
    })
  })
  return new SshConnection(client, target)
}

/** An open connection: commands run on the host over exec channels. */
export class SshConnection {
  constructor(
    private readonly client: SshClient,
    readonly target: SshTarget,
  ) {}

  /** Opens an exec channel running `command` (one string, parsed by the host's shell: quote what goes in it). */
  exec(command: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (error, channel) => (error ? reject(new DevError(`${this.target.name}: cannot run a command: ${error.message}`)) : resolve(channel)))
    })
  }

  /** Runs a command to its end: its exit status and output (stdin from `input`, if given). */
  async run(command: string, input?: Buffer | string): Promise<{code: number; stdout: string; stderr: string}> {
    const channel = await this.exec(command)
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    channel.on('data', (chunk: Buffer) => stdout.push(chunk))
    channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
    channel.end(input)
    const code = await new Promise<number>((resolve) => channel.once('close', (status: number | null) => resolve(status ?? 255)))
    return {code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8')}
  }

  close(): void {
    this.client.end()
  }
}

/** The host key algorithms ssh2 knows, best first. */
const HOST_KEY_ALGORITHMS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']

/** Those for the key types known_hosts lists first (an RSA key is asked for with SHA-2 signatures). */
function hostKeyAlgorithms(knownTypes: readonly string[]): string[] {
  const preferred = knownTypes.flatMap((type) => (type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type]))
  return [...new Set([...preferred.filter((algorithm) => HOST_KEY_ALGORITHMS.includes(algorithm)), ...HOST_KEY_ALGORITHMS])]
}

/** The ways to log in, in order: ssh-agent (unless IdentitiesOnly), then each identity file that exists. */
async function authMethods(target: SshTarget, options: ConnectOptions, env: NodeJS.ProcessEnv): Promise<{methods: AuthMethod[]; tried: string[]}> {
  const methods: AuthMethod[] = []
  const tried: string[] = []
  if (env.SSH_AUTH_SOCK && !target.identitiesOnly) {
    methods.push({type: 'agent', username: target.user, agent: env.SSH_AUTH_SOCK} as AuthMethod)
    tried.push('ssh-agent')
  }
  for (const file of target.identityFiles) {
    const text = await readFile(file).catch(() => undefined)
    if (text === undefined) continue
    let key = utils.parseKey(text)
    if (key instanceof Error && /encrypted|passphrase/i.test(key.message)) {
      if (options.askPassphrase === undefined) {
        throw new DevError(`${file} is encrypted and there is no terminal to ask its passphrase on: load it into ssh-agent (ssh-add ${file}) and try again`)
      }
      key = utils.parseKey(text, await options.askPassphrase(file))
      if (key instanceof Error) throw new DevError(`cannot use ${file}: ${key.message} (wrong passphrase?)`)
    }
    if (key instanceof Error) continue
    methods.push({type: 'publickey', username: target.user, key: Array.isArray(key) ? key[0] : key} as AuthMethod)
    tried.push(file)
  }
  return {methods, tried}
}

/** What went wrong, said so the user knows which of unreachable, host key or login it was. */
function connectError(target: SshTarget, error: Error & {level?: string; code?: string}, hostKeyProblem: string | undefined, auth: {tried: string[]}): DevError {
  const where = `${target.name} (${target.user}@${target.hostname}:${target.port})`
  if (hostKeyProblem !== undefined) return new DevError(`refusing to connect: ${hostKeyProblem}`)
  if (error.level === 'client-authentication') {
    const used = auth.tried.length > 0 ? auth.tried.join(', ') : 'no key: none of the identity files exists and no ssh-agent is running'
    return new DevError(`${where} refused the login (tried ${used}); add your public key to ~${target.user}/.ssh/authorized_keys on the host`)
  }
  if (error.level === 'client-timeout' || /timed out/i.test(error.message)) return new DevError(`cannot reach ${where}: no answer within ${target.connectTimeoutMs / 1000} s`)
  if (error.code === 'ECONNREFUSED') return new DevError(`cannot reach ${where}: connection refused (is sshd running, and on that port?)`)
  if (error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN') return new DevError(`cannot reach ${where}: no such host name`)
  return new DevError(`cannot reach ${where}: ${error.message}`)
}
