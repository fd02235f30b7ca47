import {portInUse} from './ports.js'
import type {DynoSpec} from './supervisor.js'

/** A warning for each process whose port another program listens on already: it may fail to bind it. */
export async function takenPortWarnings(specs: readonly DynoSpec[]): Promise<string[]> {
  const warnings: string[] = []
  for (const spec of specs) {
    if (spec.port !== undefined && (await portInUse(spec.port))) {
      warnings.push(`warning: port ${spec.port} of ${spec.name} is already in use by another program; ${spec.name} may fail to bind it`)
    }
  }
  return warnings
}
