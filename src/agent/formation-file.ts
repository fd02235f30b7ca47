import {readFile} from 'node:fs/promises'

import {z} from 'zod'

import {writeFileAtomic} from '../runtime/atomic-write.js'

/** Quantities per process type: `{"web": 2, "worker": 1}`. */
export type Formation = Record<string, number>

/** The most dynos of one type a host runs. */
export const MAX_QUANTITY = 100

const FormationSchema = z.record(z.string(), z.number().int().min(0).max(MAX_QUANTITY))

/** The app's formation.json, or undefined before the first release set one. */
export async function readFormation(path: string): Promise<Formation | undefined> {
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined
    throw error
  })
  if (text === undefined) return undefined
  const parsed = FormationSchema.safeParse(JSON.parse(text))
  if (!parsed.success) throw new Error(`${path} is damaged: ${parsed.error.issues[0]!.message}`)
  return parsed.data
}

export async function writeFormation(path: string, formation: Formation): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(formation, null, 2)}\n`, 0o600)
}

/** Heroku's first formation: one web dyno, every other type at zero until scaled. */
export function initialFormation(types: readonly string[]): Formation {
  return Object.fromEntries(types.map((type) => [type, type === 'web' ? 1 : 0]))
}
