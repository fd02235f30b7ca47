import {createHash, createHmac, timingSafeEqual} from 'node:crypto'
import {appendFile, mkdir, readFile} from 'node:fs/promises'
import {dirname} from 'node:path'

/** What known_hosts says of a host's key. */
export type HostKeyVerdict =
  | {status: 'known'}
  | {status: 'unknown'}
  /** Listed with another key of the same type: the key changed, or someone is in the middle. */
  | {status: 'changed'; knownFingerprint: string; where: string}

/** The name a host goes by in known_hosts: `host`, or `[host]:port` off port 22 (OpenSSH's rule). */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`
}

/** `SHA256:…`, as `ssh-keygen -lf` prints a key's fingerprint. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`
}

/** The key type at the start of an SSH public key blob (`ssh-ed25519`). */
export function keyType(key: Buffer): string {
  const length = key.readUInt32BE(0)
  return key.subarray(4, 4 + length).toString('latin1')
}

/**
 * Looks a host's key up in known_hosts files: plain and hashed (`|1|salt|hmac`) names, patterns
 * with `*`, `?` and `!`, comma-separated names; `@revoked` lines refuse the key, `@cert-authority`
 * lines are not host keys and are skipped. A host listed with a different key of the same type
 * has `changed`.
 */
export async function checkHostKey(files: readonly string[], name: string, key: Buffer): Promise<HostKeyVerdict> {
  const type = keyType(key)
  const base64 = key.toString('base64')
  let changed: HostKeyVerdict | undefined
  for (const file of files) {
    const text = await readFile(file, 'utf8').catch(() => '')
    for (const [index, raw] of text.split('\n').entries()) {
      const line = raw.trim()
      if (line === '' || line.startsWith('#')) continue
      let fields = line.split(/\s+/)
      let marker: string | undefined
      if (fields[0]!.startsWith('@')) {
        marker = fields[0]
        fields = fields.slice(1)
      }
      if (marker === '@cert-authority' || fields.length < 3) continue
      const [names, lineType, lineKey] = fields as [string, string, string]
      if (!namesMatch(names, name)) continue
      if (marker === '@revoked') {
        if (lineKey === base64) return {status: 'changed', knownFingerprint: `revoked in ${file}:${index + 1}`, where: `${file}:${index + 1}`}
        continue
      }
      if (lineType !== type) continue
      if (lineKey === base64) return {status: 'known'}
      changed ??= {status: 'changed', knownFingerprint: fingerprint(Buffer.from(lineKey, 'base64')), where: `${file}:${index + 1}`}
    }
  }
  return changed ?? {status: 'unknown'}
}

/** Trusts a host on first use: appends its key to the first known_hosts file (0600 when new). */
export async function addHostKey(file: string, name: string, key: Buffer): Promise<void> {
  await mkdir(dirname(file), {recursive: true, mode: 0o700})
  await appendFile(file, `${name} ${keyType(key)} ${key.toString('base64')}\n`, {mode: 0o600})
}

/** A known_hosts name field: comma-separated patterns, one of them hashed; `!` negates. */
function namesMatch(names: string, name: string): boolean {
  if (names.startsWith('|1|')) return hashedMatch(names, name)
  let matched = false
  for (const pattern of names.split(',')) {
    const negated = pattern.startsWith('!')
    if (!globMatch(negated ? pattern.slice(1) : pattern, name)) continue
    if (negated) return false
    matched = true
  }
  return matched
}

function hashedMatch(field: string, name: string): boolean {
  const [, , salt, hash] = field.split('|')
  if (salt === undefined || hash === undefined) return false
  const expected = Buffer.from(hash, 'base64')
  const actual = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest()
  return expected.length === actual.length && timingSafeEqual(expected, actual)
}

/** OpenSSH host patterns: `*` any run, `?` one character, case-insensitive. */
function globMatch(pattern: string, name: string): boolean {
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i')
  return regex.test(name)
}
