import {flush, run, settings} from '@oclif/core'

import {reportError} from './report-error.js'

/** The entry point of bin/run.js and bin/dev.js. */
export async function runCli(dir: string, options: {development: boolean}): Promise<void> {
  // bin/run.js always runs the build, even when NODE_ENV=test or development would let oclif load src/.
  if (!options.development) settings.enableAutoTranspile = false
  try {
    await run(process.argv.slice(2), dir)
    await flush()
  } catch (error) {
    await flush().catch(() => {})
    process.exitCode = reportError(error)
  }
}
