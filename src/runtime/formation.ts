import {UsageError} from './dev-error.js'
import {RELEASE_TYPE, type ProcessType} from './procfile.js'

/** How many processes of one type to run; `index` is the type's position in the Procfile. */
export interface FormationEntry {
  type: ProcessType
  index: number
  quantity: number
}

/** The most processes of one type: a 101st would take the first port of the next type. */
export const MAX_QUANTITY = 100

/** Parses `web=2,worker=0,all=1` into counts by name (`all` included as a name). */
export function parseFormationSpec(spec: string, known: readonly ProcessType[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const item of spec.split(',').map((part) => part.trim()).filter(Boolean)) {
    const match = /^([^=\s]+)\s*=\s*(\S*)$/.exec(item)
    if (!match) throw new UsageError(`bad formation ${quoted(item)}: write NAME=COUNT, as in web=2,worker=1; the Procfile defines: ${typeNames(known)}`)
    const [, name, count] = match as unknown as [string, string, string]
    if (name !== 'all' && !known.some((type) => type.name === name)) throw unknownType(name, known)
    if (!/^\d+$/.test(count) || Number(count) > MAX_QUANTITY) {
      throw new UsageError(`bad count ${quoted(count)} for ${name}: use a whole number from 0 to ${MAX_QUANTITY}; the Procfile defines: ${typeNames(known)}`)
    }
    counts.set(name, Number(count))
  }
  return counts
}

/**
 * The formation to run, in Procfile order. By default one of each type except `release`.
 * Named types (`dev start web worker`) run alone. Counts from -m override; `all=N` sets every
 * type the spec does not list. Types with quantity 0 are left out.
 */
export function resolveFormation(types: readonly ProcessType[], options: {spec?: string; only?: readonly string[]} = {}): FormationEntry[] {
  const only = options.only ?? []
  for (const name of only) if (!types.some((type) => type.name === name)) throw unknownType(name, types)
  const counts = options.spec === undefined ? new Map<string, number>() : parseFormationSpec(options.spec, types)
  const all = counts.get('all')
  if (only.length > 0) {
    const unstarted = [...counts.keys()].find((name) => name !== 'all' && !only.includes(name))
    if (unstarted !== undefined) {
      throw new UsageError(`-m counts ${unstarted}, which is not among the types to start; name it too: dev start ${[...only, unstarted].join(' ')}`)
    }
  }

  const formation: FormationEntry[] = []
  for (const [index, type] of types.entries()) {
    const selected = only.length === 0 ? type.name !== RELEASE_TYPE : only.includes(type.name)
    const fallback = selected ? (all !== undefined && type.name !== RELEASE_TYPE ? all : 1) : 0
    const quantity = only.length > 0 && !selected ? 0 : (counts.get(type.name) ?? fallback)
    if (quantity > 0) formation.push({type, index, quantity})
  }
  if (formation.length === 0) {
    if (types.every((type) => type.name === RELEASE_TYPE)) {
      throw new UsageError('the Procfile defines only release, which runs on deploy; to run it here: dev start release')
    }
    throw new UsageError(`the formation runs no processes; give a type a count above 0, as in -m ${types[0]!.name}=1`)
  }
  return formation
}

function unknownType(name: string, known: readonly ProcessType[]): UsageError {
  // `dev start --router 9000`: the port was meant for the flag, whose value must be attached.
  const port = /^\d{1,5}$/.test(name) ? ` (a port for --router? attach it: --router=${name})` : ''
  return new UsageError(`unknown process type ${quoted(name)}; the Procfile defines: ${typeNames(known)}${port}`)
}

/** The Procfile's type names for a message: a Procfile of thousands of types is not listed whole. */
function typeNames(known: readonly ProcessType[], max = 20): string {
  const names = known.slice(0, max).map((type) => type.name).join(', ')
  return known.length > max ? `${names}, … (${known.length} in all)` : names
}

/**
 * What the user typed, quoted for a one-line message: control characters escaped (a newline or a
 * terminal escape in an argument stays visible and harmless) and a long text cut short.
 */
function quoted(text: string, max = 60): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text)
}
