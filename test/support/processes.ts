import {execFileSync} from 'node:child_process'

/** Pids of the live (not zombie) processes in process group `pgid`, read with ps. */
export function liveGroupMembers(pgid: number): number[] {
  const table = execFileSync('ps', ['-eo', 'pid=,pgid=,stat='], {encoding: 'utf8'})
  return table
    .trim()
    .split('\n')
    .map((row) => row.trim().split(/\s+/))
    .filter(([, group, stat]) => Number(group) === pgid && !stat!.startsWith('Z'))
    .map(([pid]) => Number(pid))
}

/** True when a live (not zombie) process has this pid. */
export function processAlive(pid: number): boolean {
  try {
    const stat = execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], {encoding: 'utf8'}).trim()
    return stat !== '' && !stat.startsWith('Z')
  } catch {
    return false
  }
}
