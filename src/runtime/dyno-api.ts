import {z} from 'zod'

import {MAX_QUANTITY} from './formation.js'
import {PROCESS_NAME} from './procfile.js'

/** Heroku's dyno states (a dyno waiting to be restarted after a crash is `crashed`). */
export type DynoState = 'starting' | 'up' | 'crashed' | 'stopping'

/** One dyno as the agent API (or a local dev start's control socket) shows it. */
export interface DynoInfo {
  name: string
  type: string
  state: DynoState
  since: string
  restarts: number
  release: string
  command: string
  port: number
  pid: number | null
}

/** One process type of the formation as the API shows it. */
export interface FormationItem {
  type: string
  quantity: number
  command: string
}

/** The body of `PATCH /apps/:app/formation`, on a host's agent and on dev start's control socket alike. */
export const PatchFormation = z
  .object({updates: z.array(z.object({type: z.string().regex(PROCESS_NAME, 'a process type name'), quantity: z.number().int().min(0).max(MAX_QUANTITY)}).strict()).min(1)})
  .strict()
