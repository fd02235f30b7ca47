import {readFile} from 'node:fs/promises'

import {z} from 'zod'

import {writeFileAtomic} from '../runtime/atomic-write.js'

/** What a restarted agent needs to adopt a dyno that outlived the agent before it. */
const DynoRecordSchema = z.object({
  key: z.string().regex(/^[a-z0-9_-]+\.\d+@[0-9a-f]+$/i),
  name: z.string(),
  type: z.string(),
  release: z.number().int().positive(),
  command: z.string(),
  port: z.number().int(),
  /** The leader of its process group, and when it started (so a reused pid is never taken for it). */
  pid: z.number().int().positive().optional(),
  start_time: z.number().optional(),
})
export type DynoRecord = z.infer<typeof DynoRecordSchema>

/** apps/<app>/dynos.json; an unreadable file means no dyno can be adopted (they are started again). */
export async function readDynoRecords(path: string): Promise<DynoRecord[]> {
  const text = await readFile(path, 'utf8').catch(() => '[]')
  try {
    const parsed = z.array(DynoRecordSchema).safeParse(JSON.parse(text))
    return parsed.success ? parsed.data : []
  } catch {
    return []
  }
}

/**
 * Writes the records, one write at a time and the latest last: calls that arrive while a write is
 * under way are folded into one more write.
 */
export class DynoRecordWriter {
  private writing?: Promise<void>
  private pending?: () => DynoRecord[]

  constructor(private readonly path: string) {}

  save(records: () => DynoRecord[]): Promise<void> {
    this.pending = records
    this.writing ??= this.drain()
    return this.writing
  }

  private async drain(): Promise<void> {
    while (this.pending) {
      const records = this.pending()
      this.pending = undefined
      await writeFileAtomic(this.path, `${JSON.stringify(records, null, 2)}\n`, 0o600).catch((error: Error) => {
        process.stderr.write(`dev-agent: cannot write ${this.path}: ${error.message}\n`)
      })
    }
    // Cleared in the same step as the last look at `pending`: a later save starts a new drain.
    this.writing = undefined
  }
}
