import type {ChildProcess} from 'node:child_process'
import {readFileSync, readlinkSync, statSync} from 'node:fs'
import {delimiter, join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {execa} from 'execa'
import {z} from 'zod'

import {spawnArgvGroup} from '../runtime/process-group.js'
import {AppError} from './app-error.js'

const SIDE = z.number().int().min(1).max(1000)

/** A terminal's size, as a run's request (`tty`) and a resize frame give it. */
export const TtySize = z.object({rows: SIDE, cols: SIDE}).strict()
export type TtySize = z.infer<typeof TtySize>

/** The TERM a run on a terminal asks for (its programs see xterm-256color without one). */
export const TERM = z.string().regex(/^[A-Za-z0-9._+-]{1,64}$/, 'a terminal type like xterm-256color')

/** A run's terminal: its size and TERM. */
export interface TtyRequest extends TtySize {
  term?: string
}

/** What a terminal's stdin end is: its EOF character (Ctrl-D), since `script` passes on no EOF of its own. */
export const TERMINAL_EOF = Buffer.from([4])

/**
 * What `script` runs on the terminal: fixed text, with everything from the request in the
 * environment. It sets the size, rebuilds the run's argv from DEV_TTY_ARG_1… (each word only ever
 * read as a variable, never parsed as shell code), gives SHELL back (script needs its own), and runs
 * the argv as a run without a terminal does.
 */
const ON_TERMINAL = [
  'command -p stty rows "$DEV_TTY_ROWS" cols "$DEV_TTY_COLS"',
  'set --',
  'dev_i=0',
  'while [ "$dev_i" -lt "$DEV_TTY_ARGC" ]; do dev_i=$((dev_i + 1)); eval "set -- \\"\\$@\\" \\"\\$DEV_TTY_ARG_$dev_i\\"; unset DEV_TTY_ARG_$dev_i"; done',
  'if [ -n "${DEV_TTY_SHELL+set}" ]; then SHELL=$DEV_TTY_SHELL; export SHELL; else unset SHELL; fi',
  'unset dev_i DEV_TTY_ARGC DEV_TTY_ROWS DEV_TTY_COLS DEV_TTY_SHELL',
  'exec "$@"',
].join('\n')

/** util-linux `script` on the agent's PATH: what gives a run a pseudo-terminal. */
export function scriptCommand(): string {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    const path = join(dir, 'script')
    if (statSync(path, {throwIfNoEntry: false})?.isFile()) return path
  }
  throw new AppError(422, 'this host has no `script` command (util-linux) for a terminal; run without one')
}

/**
 * Starts `argv` on a new pseudo-terminal of `tty`'s size, through `script -q -e -f` (which returns
 * the command's status, 128 + N for signal N) in a process group of its own, `.profile.d` sourced
 * first. Output (stdout and stderr alike) comes on the child's stdout and stderr; its stdin is typed
 * at the terminal.
 */
export function spawnOnTerminal({script, argv, cwd, env, tty}: {script: string; argv: readonly string[]; cwd: string; env: Record<string, string>; tty: TtyRequest}): ChildProcess {
  const words = Object.fromEntries(argv.map((word, index) => [`DEV_TTY_ARG_${index + 1}`, word]))
  const terminalEnv: Record<string, string> = {...env, ...words, DEV_TTY_ARGC: String(argv.length), DEV_TTY_ROWS: String(tty.rows), DEV_TTY_COLS: String(tty.cols), TERM: tty.term ?? 'xterm-256color', SHELL: '/bin/sh'}
  delete terminalEnv.DEV_TTY_SHELL
  if (env.SHELL !== undefined) terminalEnv.DEV_TTY_SHELL = env.SHELL
  return spawnArgvGroup({argv: [script, '-q', '-e', '-f', '-c', ON_TERMINAL, '/dev/null'], cwd, env: terminalEnv, profile: true})
}

/**
 * The session `script` started on its terminal: its child, once that leads a session with the
 * terminal as its controlling one (where the command runs, and where a terminal's signals go).
 * Undefined before then, and after script has gone.
 */
export function terminalSession(scriptPid: number): number | undefined {
  let children: string
  try {
    children = readFileSync(`/proc/${scriptPid}/task/${scriptPid}/children`, 'latin1')
  } catch {
    return undefined
  }
  for (const pid of children.trim().split(' ').filter(Boolean).map(Number)) {
    const fields = statFields(pid)
    // Fields from the state on: state, ppid, pgrp, session, tty_nr.
    if (fields !== undefined && Number(fields[3]) === pid && Number(fields[4]) !== 0) return pid
  }
  return undefined
}

/**
 * The session and terminal (`/dev/pts/N`) of the run `script` leads, once the terminal has the size
 * the run asked for: `script` makes it with none (0 0) and the fixed text sets it, so a resize
 * before then would be undone. Undefined once script has ended.
 */
export async function sizedTerminal(script: ChildProcess): Promise<{session: number; device: string} | undefined> {
  while (script.pid !== undefined && script.exitCode === null && script.signalCode === null) {
    const session = terminalSession(script.pid)
    const device = session === undefined ? undefined : terminalDevice(session)
    if (session !== undefined && device !== undefined && /^[1-9]\d* [1-9]\d*$/.test((await stty(device, ['size'])).trim())) return {session, device}
    await sleep(10)
  }
  return undefined
}

/**
 * Sets the size of a terminal; when the size changes, the kernel sends SIGWINCH to the terminal's
 * foreground job, as a resized terminal window does.
 */
export async function resizeTerminal(device: string, size: TtySize): Promise<void> {
  await stty(device, ['rows', String(size.rows), 'cols', String(size.cols)])
}

/** `stty -F device …` (argv only); its output, or nothing when the terminal is gone. */
async function stty(device: string, args: readonly string[]): Promise<string> {
  return (await execa('stty', ['-F', device, ...args], {reject: false})).stdout
}

/** The /dev/pts/N a session leader has on its stdin, stdout or stderr. */
function terminalDevice(pid: number): string | undefined {
  for (const fd of [0, 1, 2]) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`)
      if (/^\/dev\/pts\/\d+$/.test(target)) return target
    } catch {
      // Gone, or not a link we may read.
    }
  }
  return undefined
}

/** The fields of /proc/PID/stat after the command name (state, ppid, pgrp, session, tty_nr, …). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}
