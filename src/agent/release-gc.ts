import {readdir, rm, stat} from 'node:fs/promises'
import {join} from 'node:path'

import type {Release} from './release-ledger.js'

/** How many releases per app keep their extracted slug and their slug (never fewer than the last two). */
export const KEEP_RELEASES = 5

/**
 * The releases of one app whose files stay: the last KEEP_RELEASES, which always include the current
 * and the previous one (a rollback target must still be there).
 */
export function releasesToKeep(releases: readonly Release[], keep = KEEP_RELEASES): Release[] {
  return releases.slice(-Math.max(2, keep))
}

/** Removes the extracted slugs of an app's older releases (apps/<app>/releases/vN). */
export async function collectReleaseDirs(appReleasesDir: string, kept: readonly Release[]): Promise<string[]> {
  const keep = new Set(kept.map((release) => `v${release.v}`))
  // A directory newer than the last release belongs to a release being made right now.
  const newest = Math.max(0, ...kept.map((release) => release.v))
  const removed: string[] = []
  for (const name of await readdir(appReleasesDir).catch(() => [] as string[])) {
    if (!/^v\d+$/.test(name) || keep.has(name) || Number(name.slice(1)) > newest) continue
    await rm(join(appReleasesDir, name), {recursive: true, force: true})
    removed.push(name)
  }
  return removed
}

/** A slug uploaded this recently is kept even if no release uses it yet: its deploy is under way. */
export const UPLOAD_GRACE_MS = 60 * 60 * 1000

/** Removes the slugs no app keeps (slugs are shared: the same build may serve several apps). */
export async function collectSlugs(slugsDir: string, keptBySomeApp: ReadonlySet<string>, now = Date.now()): Promise<string[]> {
  const removed: string[] = []
  for (const name of await readdir(slugsDir).catch(() => [] as string[])) {
    const match = /^([0-9a-f]{64})\.tgz$/.exec(name)
    if (!match || keptBySomeApp.has(match[1]!)) continue
    const uploaded = await stat(join(slugsDir, name)).then((stats) => stats.mtimeMs, () => now)
    if (now - uploaded < UPLOAD_GRACE_MS) continue
    await rm(join(slugsDir, name), {force: true})
    removed.push(match[1]!)
  }
  return removed
}

/** Bytes used under `dir` (files only), for the disk report. */
export async function diskUsage(dir: string): Promise<number> {
  let total = 0
  for (const entry of await readdir(dir, {withFileTypes: true}).catch(() => [])) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) total += await diskUsage(path)
    else if (entry.isFile()) total += (await stat(path)).size
  }
  return total
}
