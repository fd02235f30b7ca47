import {spawnSync} from 'node:child_process'
import {fileURLToPath} from 'node:url'

export const projectRoot = fileURLToPath(new URL('../..', import.meta.url))

export interface BinResult {
  status: number | null
  stdout: string
  stderr: string
}

/** Runs the real `dev` executable (bin/run.js, or bin/dev.js for the TS sources) as a user would. */
export function runBin(args: string[], options: {cwd?: string; env?: NodeJS.ProcessEnv; bin?: 'run.js' | 'dev.js'} = {}): BinResult {
  const env: NodeJS.ProcessEnv = {...process.env, NO_COLOR: '1'}
  delete env.FORCE_COLOR
  delete env.DEBUG
  Object.assign(env, options.env)
  const result = spawnSync(process.execPath, [`${projectRoot}bin/${options.bin ?? 'run.js'}`, ...args], {
    cwd: options.cwd ?? projectRoot,
    env,
    encoding: 'utf8',
    timeout: 20_000,
  })
  return {status: result.status, stdout: result.stdout, stderr: result.stderr}
}
