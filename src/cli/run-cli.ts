import {readdirSync, rmSync, statSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

import {flush, run, settings} from '@oclif/core'

import {reportError} from './report-error.js'
import {protectRunCommand} from './split-run-argv.js'

/** The entry point of bin/run.js and bin/dev.js. */
export async function runCli(dir: string, options: {development: boolean}): Promise<void> {
  // bin/run.js always runs the build, even when NODE_ENV=test or development would let oclif load src/.
  if (!options.development) settings.enableAutoTranspile = false
  else dropStaleManifest(dir)
  try {
    await run(protectRunCommand(process.argv.slice(2)), dir)
    await flush()
  } catch (error) {
    await flush().catch(() => {})
    process.exitCode = reportError(error)
  }
}

/**
 * The build writes oclif.manifest.json (command help, so start-up loads no other command). When
 * running the sources, a command changed since the last build would be described wrongly by it:
 * then it is removed, and oclif reads the commands themselves.
 */
function dropStaleManifest(binUrl: string): void {
  const root = fileURLToPath(new URL('..', binUrl))
  const manifest = `${root}oclif.manifest.json`
  let built: number
  try {
    built = statSync(manifest).mtimeMs
  } catch {
    return
  }
  const commands = `${root}src/commands`
  const changed = readdirSync(commands, {recursive: true, encoding: 'utf8'}).some((file) => statSync(`${commands}/${file}`).mtimeMs > built)
  if (changed) rmSync(manifest, {force: true})
}
