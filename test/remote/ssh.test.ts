import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'
import {describe, expect, it} from 'vitest'

import {fingerprint} from '../../src/remote/known-hosts.js'
import {connectSsh} from '../../src/remote/ssh-connection.js'
import {resolveSshTarget} from '../../src/remote/ssh-target.js'
import {freePort} from '../support/free-port.js'
import {startSshHosts} from '../support/ssh-hosts.js'

const keyFingerprint = (hostKey: string) => fingerprint(Buffer.from(hostKey.split(' ')[1]!, 'base64'))

describe('SSH to hosts (real OpenSSH sshd on 127.0.0.1)', () => {
  it('resolves a host as OpenSSH does, and runs commands on it in its own environment', async () => {
    const {hosts, env, clientKey, knownHostsFile} = await startSshHosts(1)
    const target = await resolveSshTarget('vps1', env)
    expect(target).toMatchObject({hostname: '127.0.0.1', port: hosts[0]!.port, identityFiles: [clientKey], identitiesOnly: true, knownHostsFiles: [knownHostsFile], strictHostKeyChecking: 'yes'})
    const ssh = await connectSsh(target, {env})
    try {
      expect(await ssh.run('echo "$DEV_AGENT_HOME"; cat; exit 3', 'from stdin')).toEqual({code: 3, stdout: `${hosts[0]!.agentHome}\nfrom stdin`, stderr: ''})
    } finally {
      ssh.close()
    }
    // [user@]host[:port] works too, and a name can never pass for an option of ssh.
    expect(await resolveSshTarget(`deploy@127.0.0.1:${hosts[0]!.port}`, env)).toMatchObject({user: 'deploy', hostname: '127.0.0.1', port: hosts[0]!.port})
    await expect(resolveSshTarget('-oProxyCommand=touch /tmp/x', env)).rejects.toThrow('is not a host')
    // A host behind a jump host is refused rather than connected to directly.
    const jumped = join(hosts[0]!.agentHome, '..', 'jump_config')
    await writeFile(jumped, 'Host inner\n  HostName 10.0.0.5\n  ProxyJump vps1\n')
    await expect(resolveSshTarget('inner', {...env, DEV_SSH_CONFIG: jumped})).rejects.toThrow('inner is reached through ProxyJump (vps1) in your ssh config, which dev cannot go through yet')
  })

  it('refuses an unknown host key with its fingerprint, and trusts it on first use only when asked', async () => {
    const {hosts, env, knownHostsFile} = await startSshHosts(1, {knownHosts: false})
    const target = await resolveSshTarget('vps1', env)
    await expect(connectSsh(target, {env})).rejects.toThrow(
      `refusing to connect: vps1 ([127.0.0.1]:${hosts[0]!.port}) is not a known host: its key is ssh-ed25519 ${keyFingerprint(hosts[0]!.hostKey)}. If that is the key of your server, trust it with --accept-new-host-key`,
    )
    await expect(readFile(knownHostsFile, 'utf8')).rejects.toThrow()
    const ssh = await connectSsh(target, {env, acceptNewHostKey: true})
    ssh.close()
    expect(await readFile(knownHostsFile, 'utf8')).toBe(`[127.0.0.1]:${hosts[0]!.port} ${hosts[0]!.hostKey}\n`)
    // Known now: no flag needed.
    ;(await connectSsh(target, {env})).close()
  })

  it('always refuses a changed host key, showing both fingerprints, even with --accept-new-host-key', async () => {
    const {hosts, env, knownHostsFile} = await startSshHosts(1, {knownHosts: false})
    const other = join(knownHostsFile, '..', 'other')
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other])
    const otherKey = (await readFile(`${other}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ')
    await writeFile(knownHostsFile, `[127.0.0.1]:${hosts[0]!.port} ${otherKey}\n`)
    const target = await resolveSshTarget('vps1', env)
    const refusal = connectSsh(target, {env, acceptNewHostKey: true})
    await expect(refusal).rejects.toThrow(`the host key of vps1 ([127.0.0.1]:${hosts[0]!.port}) has changed: it is now ssh-ed25519 ${keyFingerprint(hosts[0]!.hostKey)}, known_hosts (${knownHostsFile}:1) has ssh-ed25519 ${keyFingerprint(otherKey)}`)
    expect(await readFile(knownHostsFile, 'utf8')).toBe(`[127.0.0.1]:${hosts[0]!.port} ${otherKey}\n`)
  })

  it('refuses a revoked key even when another line trusts it, and a host known by a key of another type', async () => {
    const {hosts, env, knownHostsFile} = await startSshHosts(1)
    const target = await resolveSshTarget('vps1', env)
    const name = `[127.0.0.1]:${hosts[0]!.port}`
    await writeFile(join(knownHostsFile, '..', 'known_hosts2'), `@revoked * ${hosts[0]!.hostKey}\n`)
    await expect(connectSsh({...target, knownHostsFiles: [knownHostsFile, join(knownHostsFile, '..', 'known_hosts2')]}, {env})).rejects.toThrow(/has changed: .* known_hosts \(\S+known_hosts2:1\) has revoked in/)
    const ecdsa = join(knownHostsFile, '..', 'ecdsa')
    await execa('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-f', ecdsa])
    await writeFile(knownHostsFile, `${name} ${(await readFile(`${ecdsa}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ')}\n`)
    await expect(connectSsh(target, {env, acceptNewHostKey: true})).rejects.toThrow(/the host key of vps1 .* has changed: it is now ssh-ed25519 SHA256:\S+, known_hosts \(\S+:1\) has ecdsa-sha2-nistp256 SHA256:/)
  })

  it('reads hashed known_hosts entries', async () => {
    const {env, knownHostsFile} = await startSshHosts(1)
    await execa('ssh-keygen', ['-H', '-f', knownHostsFile])
    expect(await readFile(knownHostsFile, 'utf8')).toMatch(/^\|1\|/)
    ;(await connectSsh(await resolveSshTarget('vps1', env), {env})).close()
  })

  it('says which: a login refused, a host that does not answer', async () => {
    const {env, dir} = await startSshHosts(1)
    const stranger = join(dir, 'stranger')
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger])
    const target = await resolveSshTarget('vps1', env)
    await expect(connectSsh({...target, identityFiles: [stranger]}, {env})).rejects.toThrow(`vps1 (${target.user}@127.0.0.1:${target.port}) refused the login (tried ${stranger}); add your public key to ~${target.user}/.ssh/authorized_keys on the host`)
    const closed = await freePort()
    await expect(connectSsh({...target, port: closed}, {env})).rejects.toThrow(`cannot reach vps1 (${target.user}@127.0.0.1:${closed}): connection refused`)
  })

  it('asks for the passphrase of an encrypted key, and says what to do when it cannot', async () => {
    const {env, dir, clientKey} = await startSshHosts(1)
    const locked = join(dir, 'locked')
    await execa('cp', [clientKey, locked])
    await execa('ssh-keygen', ['-q', '-p', '-P', '', '-N', 'open sesame', '-f', locked])
    const target = {...(await resolveSshTarget('vps1', env)), identityFiles: [locked]}
    await expect(connectSsh(target, {env})).rejects.toThrow(`${locked} is encrypted and there is no terminal to ask its passphrase on: load it into ssh-agent (ssh-add ${locked})`)
    ;(await connectSsh(target, {env, askPassphrase: async () => 'open sesame'})).close()
  })
})
