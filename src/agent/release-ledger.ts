import {open, readFile, truncate} from 'node:fs/promises'

import {z} from 'zod'

import {DevError} from '../runtime/dev-error.js'

/** One release of an app: a slug plus a snapshot of its config vars (Heroku's model). */
export const ReleaseSchema = z.object({
  v: z.number().int().positive(),
  /** The slug's sha256, or null for a release made before any slug (config only). */
  slug: z.string().regex(/^[0-9a-f]{64}$/).nullable(),
  config: z.record(z.string(), z.string()),
  /** The source commit the slug was built from (SOURCE_VERSION in the dynos), when known. */
  source_version: z.string().nullable().optional(),
  description: z.string(),
  user: z.string(),
  created_at: z.string(),
})
export type Release = z.infer<typeof ReleaseSchema>

/**
 * The append-only release ledger of one app: `releases.jsonl`, one JSON release per line, mode 0600
 * (it holds config vars). A release is appended with a single write and fsync; a line cut short by
 * a crash is ignored when read and cut off before the next append, so nothing is ever half-written,
 * lost or counted twice. Appends from one process are serialised.
 */
export class ReleaseLedger {
  private queue: Promise<unknown> = Promise.resolve()

  constructor(private readonly path: string) {}

  /** Every release, oldest first. */
  async list(): Promise<Release[]> {
    return (await this.read()).releases
  }

  async current(): Promise<Release | undefined> {
    return (await this.list()).at(-1)
  }

  async get(v: number): Promise<Release | undefined> {
    return (await this.list()).find((release) => release.v === v)
  }

  /** Appends the next release (v = last + 1) and returns it. */
  append(entry: Omit<Release, 'v' | 'created_at'>, now = new Date()): Promise<Release> {
    return this.serialised(async () => {
      const {releases, validBytes, totalBytes} = await this.read()
      if (validBytes < totalBytes) await truncate(this.path, validBytes)
      const release = ReleaseSchema.parse({...entry, v: (releases.at(-1)?.v ?? 0) + 1, created_at: now.toISOString()})
      const handle = await open(this.path, 'a', 0o600)
      try {
        await handle.chmod(0o600)
        await handle.write(`${JSON.stringify(release)}\n`)
        await handle.sync()
      } finally {
        await handle.close()
      }
      return release
    })
  }

  /** A new release with the slug and config of vK: rolling back never rewrites history. */
  async rollback(to: number, user: string): Promise<Release> {
    const target = await this.get(to)
    if (target === undefined) throw new DevError(`there is no release v${to} to roll back to`)
    return this.append({slug: target.slug, source_version: target.source_version ?? null, config: target.config, description: `Rollback to v${to}`, user})
  }

  private async read(): Promise<{releases: Release[]; validBytes: number; totalBytes: number}> {
    const text = await readFile(this.path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return ''
      throw error
    })
    // Only newline-terminated lines count: a last line without one was cut short by a crash.
    const end = text.lastIndexOf('\n') + 1
    const releases = text
      .slice(0, end)
      .split('\n')
      .slice(0, -1)
      .map((line, index) => {
        const parsed = ReleaseSchema.safeParse(safeJson(line))
        if (!parsed.success) throw new DevError(`${this.path}:${index + 1}: not a valid release; the ledger is damaged, restore it from a backup`)
        return parsed.data
      })
    for (const [index, release] of releases.entries()) {
      if (release.v !== index + 1) throw new DevError(`${this.path}:${index + 1}: release v${release.v} where v${index + 1} was expected; the ledger is damaged`)
    }
    return {releases, validBytes: Buffer.byteLength(text.slice(0, end)), totalBytes: Buffer.byteLength(text)}
  }

  private serialised<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work, work)
    this.queue = result.catch(() => {})
    return result
  }
}

function safeJson(line: string): unknown {
  try {
    return JSON.parse(line)
  } catch {
    return undefined
  }
}
