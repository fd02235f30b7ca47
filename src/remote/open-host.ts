import {connectSsh, type ConnectOptions, type SshConnection} from './ssh-connection.js'
import {resolveSshTarget} from './ssh-target.js'

/** Resolves `--host` as OpenSSH would and connects: one SSH connection per host per command. */
export async function openHost(spec: string, options: ConnectOptions = {}): Promise<SshConnection> {
  return connectSsh(await resolveSshTarget(spec, options.env), options)
}

/** Runs `work` with a connection to the host, closed afterwards whatever happens. */
export async function withHost<T>(spec: string, options: ConnectOptions, work: (ssh: SshConnection) => Promise<T>): Promise<T> {
  const ssh = await openHost(spec, options)
  try {
    return await work(ssh)
  } finally {
    ssh.close()
  }
}
