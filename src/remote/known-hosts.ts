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
 * with `*`, `?` and `!`, comma-separated names. A key `@revoked` anywhere is refused; a host listed
 * with other keys only (of any type) has `changed`; `@cert-authority` lines are skipped.
 */
export async function checkHostKey(files: readonly string[], name: string, key: Buffer): Promise<HostKeyVerdict> {
  const base64 = key.toString('base64')
  const entries = await hostEntries(files, name)
  // A revoked key is refused wherever it is listed, before any line that trusts it is looked at.
  const revoked = entries.find((entry) => entry.marker === '@revoked' && entry.key === base64)
  if (revoked !== undefined) return {status: 'changed', knownFingerprint: `revoked in ${revoked.where}`, where: revoked.where}
  const trusted = entries.filter((entry) => entry.marker === undefined)
  if (trusted.some((entry) => entry.key === base64)) return {status: 'known'}
  // Known by another key, of this type or another: someone may be in the middle.
  const other = trusted[0]
  if (other !== undefined) return {status: 'changed', knownFingerprint: `${other.type} ${fingerprint(Buffer.from(other.key, 'base64'))}`, where: other.where}
  return {status: 'unknown'}
}

/** The key types known_hosts lists for a host: the ones to ask the host for first. */
export async function knownKeyTypes(files: readonly string[], name: string): Promise<string[]> {
  return [...new Set((await hostEntries(files, name)).filter((entry) => entry.marker === undefined).map((entry) => entry.type))]
}

interface HostEntry {
  marker?: string
  type: string
  key: string
  where: string
}

/** The lines of the known_hosts files that name this host (`@cert-authority` lines are no host keys). */
async function hostEntries(files: readonly string[], name: string): Promise<HostEntry[]> {
  const entries: HostEntry[] = []
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
      const [names, type, key] = fields as [string, string, string]
      if (namesMatch(names, name)) entries.push({marker, type, key, where: `${file}:${index + 1}`})
    }
  }
  return entries
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
