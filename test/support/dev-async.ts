import {spawnBin} from './spawn-bin.js'

/** The real dev, run without blocking this process (load clients and servers in it keep going meanwhile). */
export async function devAsync(args: string[], options: {cwd: string; env?: NodeJS.ProcessEnv; stdin?: string}) {
  const live = spawnBin(args, options)
  const status = await live.status
  return {status, stdout: live.stdout(), stderr: live.stderr()}
}

export interface PsDyno {
  name: string
  type: string
  state: string
  pid: number | null
  release: string
  restarts: number
}

/** The dynos on the first host, as `dev ps --json` lists them. */
export async function psDynos(root: string, env: NodeJS.ProcessEnv): Promise<PsDyno[]> {
  const ps = await devAsync(['ps', '--json'], {cwd: root, env})
  if (ps.status !== 0) throw new Error(`dev ps failed: ${ps.stderr}`)
  return (JSON.parse(ps.stdout) as {dynos: PsDyno[]}[])[0]!.dynos
}
