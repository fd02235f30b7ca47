import {createHash} from 'node:crypto'
import {mkdir, rename, rm, stat, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'

/** dev's built-in buildpacks (path → file), embedded by scripts/bundle-agent.mjs. */
declare const EMBEDDED_BUILDPACKS: Record<string, {mode: number; text: string}>

/**
 * Writes the built-in buildpacks this agent carries to `$DEV_AGENT_HOME/buildpacks/<hash>/` (once
 * per content: an upgraded agent gets its own copy) and returns that directory. The copy appears
 * whole or not at all.
 */
export async function installBuiltinBuildpacks(home: string): Promise<string> {
  const files = Object.entries(EMBEDDED_BUILDPACKS)
  const hash = createHash('sha256').update(JSON.stringify(files)).digest('hex').slice(0, 16)
  const dir = join(home, 'buildpacks', hash)
  if (await stat(dir).then(() => true, () => false)) return dir
  const staging = `${dir}.tmp-${process.pid}`
  await rm(staging, {recursive: true, force: true})
  for (const [path, {mode, text}] of files) {
    await mkdir(dirname(join(staging, path)), {recursive: true})
    await writeFile(join(staging, path), text, {mode})
  }
  await rename(staging, dir).catch(async (error: NodeJS.ErrnoException) => {
    // Another worker installed the same copy first.
    await rm(staging, {recursive: true, force: true})
    if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error
  })
  return dir
}
