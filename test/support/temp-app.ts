import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'

/** The app directories this test file has made, removed once its tests are done (see setup.ts). */
const made: string[] = []

/** Makes a throwaway app directory holding `files` (path → content) and returns its path. */
export async function tempApp(files: Record<string, string> = {}): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'dev-app-'))
  made.push(root)
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), {recursive: true})
    await writeFile(join(root, path), content)
  }
  return root
}

/**
 * Removes the directories tempApp made. Never fails a test: a process a test left behind may
 * still be writing there (what it writes afterwards is left).
 */
export async function removeTempApps(): Promise<void> {
  await Promise.all(made.splice(0).map((dir) => rm(dir, {recursive: true, force: true, maxRetries: 5}).catch(() => {})))
}
