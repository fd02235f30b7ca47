import {spawn, type ChildProcess} from 'node:child_process'
import {readdirSync, readFileSync} from 'node:fs'
import {Socket} from 'node:net'

/** What a process group runs: `/bin/sh -c COMMAND` in `cwd` with exactly `env`. */
export interface GroupCommand {
  command: string
  cwd: string
  env: Record<string, string>
  /** Source `.profile.d/*.sh` (in name order) first, as a process started from a slug does. */
  profile?: boolean
  /** An open file descriptor for stdout and stderr (a FIFO, say) instead of a new pipe. */
  output?: number
}

/**
 * The fixed scripts processes run; the app's command arrives as $1 and is never pasted into them.
 * `exec 2>&1` puts stderr on the stdout pipe before the command is even parsed, so both (and the
 * shell's own syntax errors) arrive in order on one pipe. `set --` clears $1 before the command
 * runs, as `sh -c COMMAND` would have it.
 */
const MERGE_STDERR = 'exec 2>&1; '
const RUN = 'eval "set --; $1"'
/** For a simple command the program replaces the shell, as bash does for `bash -c 'cmd args'`. */
const EXEC = 'eval "set --; exec $1"'
/**
 * Buildpacks leave scripts here that set up the environment (PATH to a virtualenv, say). They run
 * in this shell, so the command is kept aside while they do (a script may `set --`).
 */
const SOURCE_PROFILE =
  'dev_command=$1; for f in .profile.d/*.sh; do if [ -r "$f" ]; then . "./$f"; fi; done; set -- "$dev_command"; unset dev_command f; '

/** Shell builtins with no program of the same name: `exec` cannot replace the shell with them. */
const BUILTINS = new Set(['.', ':', 'alias', 'bg', 'break', 'cd', 'command', 'continue', 'eval', 'exec', 'exit', 'export', 'fg', 'getopts', 'hash', 'jobs', 'local', 'read', 'readonly', 'return', 'set', 'shift', 'source', 'times', 'trap', 'type', 'ulimit', 'umask', 'unalias', 'unset', 'wait'])

/**
 * True for one plain command with arguments (`node server.js --port $PORT`): no lists, pipes,
 * redirections, subshells, substitutions or leading assignments. Such a command can replace the
 * shell, so the app itself leads its process group: it gets the stop signal directly, and its own
 * exit status is the one reported.
 */
export function isSimpleCommand(command: string): boolean {
  const unquoted = withoutQuotedText(command)
  if (unquoted === undefined || /[;&|<>()`\n{}!]|\$\(/.test(unquoted)) return false
  const first = command.trim().split(/\s+/)[0] ?? ''
  return first !== '' && !first.includes('=') && !BUILTINS.has(first)
}

/**
 * The command with the contents of its quotes blanked out, so `node -e "f(() => 1)"` has no
 * operators left; undefined when a quote hides a substitution (`"$(x)"`, backticks) or is unclosed.
 */
function withoutQuotedText(command: string): string | undefined {
  let out = ''
  for (let i = 0; i < command.length; i++) {
    const ch = command[i]!
    if (ch === '\\') {
      out += '__'
      i += 1
    } else if (ch === "'") {
      const close = command.indexOf("'", i + 1)
      if (close === -1) return undefined
      out += "''"
      i = close
    } else if (ch === '"') {
      let close = i + 1
      while (close < command.length && command[close] !== '"') close += command[close] === '\\' ? 2 : 1
      const inside = command.slice(i + 1, close)
      if (close >= command.length || inside.includes('`') || inside.includes('$(')) return undefined
      out += '""'
      i = close
    } else {
      out += ch
    }
  }
  return out
}

/**
 * Starts the command through /bin/sh as the leader of a new process group (and session), stdin on
 * /dev/null, stdout and stderr on one pipe (or on `output`).
 */
export function spawnGroup({command, cwd, env, profile = false, output}: GroupCommand): ChildProcess {
  const script = MERGE_STDERR + (profile ? SOURCE_PROFILE : '') + (isSimpleCommand(command) ? EXEC : RUN)
  return spawn('/bin/sh', ['-c', script, 'sh', command], {
    cwd,
    env,
    detached: true,
    stdio: ['ignore', output ?? 'pipe', 'ignore'],
  })
}

/** Sources `.profile.d` in a function, whose own positional parameters a script's `set --` changes. */
const SOURCE_PROFILE_KEEPING_ARGS = 'dev_profile() { for f in .profile.d/*.sh; do if [ -r "$f" ]; then . "./$f"; fi; done; }; dev_profile; unset -f dev_profile; unset f; '

/**
 * Starts `argv` (a one-off command) as the leader of a new process group, with stdin, stdout and
 * stderr each on its own pipe; `.profile.d` is sourced first when `profile` is set.
 */
export function spawnArgvGroup({argv, cwd, env, profile = false}: {argv: readonly string[]; cwd: string; env: Record<string, string>; profile?: boolean}): ChildProcess {
  const script = (profile ? SOURCE_PROFILE_KEEPING_ARGS : '') + 'exec "$@"'
  return spawn('/bin/sh', ['-c', script, 'sh', ...argv], {cwd, env, detached: true, stdio: ['pipe', 'pipe', 'pipe']})
}

/**
 * Sends `signal` to every process of the group led by `pgid`; false when the group is empty (or,
 * should the id have been reused by someone else's group, not ours to signal).
 */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal)
    return true
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ESRCH' || code === 'EPERM') return false
    throw error
  }
}

/**
 * The groups among `pgids` that still have a live process, even after their leader has exited. A
 * zombie (dead, waiting for its new parent to reap it) does not count: on Linux /proc tells them
 * apart (elsewhere any member counts). A live leader settles it from its own stat; only a group
 * whose leader is gone costs a pass over every process in /proc.
 */
export function liveGroups(pgids: Iterable<number>): Set<number> {
  const signalled = new Set([...pgids].filter((pgid) => signalGroup(pgid, 0)))
  if (signalled.size === 0 || process.platform !== 'linux') return signalled
  const live = new Set<number>()
  for (const pgid of signalled) {
    const leader = liveStat(pgid)
    if (leader !== undefined && Number(leader[2]) === pgid) live.add(pgid)
  }
  if (live.size === signalled.size) return live
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return signalled
  }
  for (const entry of entries) {
    if (entry.charCodeAt(0) < 48 || entry.charCodeAt(0) > 57) continue
    const pgid = Number(liveStat(Number(entry))?.[2])
    if (signalled.has(pgid)) live.add(pgid)
  }
  return live
}

/**
 * Waits up to `graceMs` for the groups to empty (after a SIGTERM, say), then sends SIGKILL to every
 * group that still has a member (calling `onKill` first when there is one); resolves once that is done.
 */
export async function killGroupsAfter(pgids: readonly number[], graceMs: number, onKill: () => void = () => {}): Promise<void> {
  const deadline = Date.now() + graceMs
  while (Date.now() < deadline && liveGroups(pgids).size > 0) await new Promise((resolve) => setTimeout(resolve, 20))
  const left = liveGroups(pgids)
  if (left.size > 0) onKill()
  for (const pgid of left) signalGroup(pgid, 'SIGKILL')
}

/** True while any process of the group is alive (see liveGroups). */
export function groupAlive(pgid: number): boolean {
  return liveGroups([pgid]).size > 0
}

/**
 * When the process `pid` started, in clock ticks since boot (field 22 of /proc/PID/stat): with the
 * pid, it names one process for good, so a pid reused by another program is never mistaken for it.
 * Undefined when there is no such live process (or no /proc).
 */
export function processStartTime(pid: number): number | undefined {
  const fields = liveStat(pid)
  return fields === undefined ? undefined : Number(fields[19])
}

/**
 * The fields of /proc/PID/stat from the state on (state, ppid, pgrp, …), or undefined when there is
 * no such process, or it is a zombie.
 */
function liveStat(pid: number): string[] | undefined {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
  } catch {
    return undefined
  }
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")".
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return fields[0] === 'Z' || fields[0] === 'X' ? undefined : fields
}

/**
 * Lets a running child go without stopping it (an agent exiting while its processes run on): the
 * child and its stdio pipes no longer keep this process alive, and whatever still arrives on them
 * before it exits is read as before.
 */
export function releaseChild(child: ChildProcess): void {
  child.unref()
  for (const stream of child.stdio) if (stream instanceof Socket) stream.unref()
}
