import {spawn, type ChildProcess} from 'node:child_process'
import {constants} from 'node:os'

import {quote} from 'shell-quote'

import {loadAppEnv} from './app-env.js'
import {resolveAppFiles, type AppFileOptions} from './app-files.js'
import {DevError, UsageError} from './dev-error.js'
import {displayPath} from './display-path.js'
import {resolveBasePort} from './ports.js'
import {isSimpleCommand} from './process-group.js'
import {processEnv} from './process-env.js'
import {formatProblem} from './problem.js'
import {scanProcfile, type ProcessType} from './procfile.js'
import {readTextFileIfExists} from './text-file.js'

export interface RunOptions extends AppFileOptions {
  port?: number
}

export interface RunIo {
  env: NodeJS.ProcessEnv
  cwd: string
  signals: NodeJS.EventEmitter
  /** True when dev runs in a terminal (its stdin is a TTY). */
  interactive: boolean
  /** Prints a warning for the user (to stderr). */
  warn(text: string): void
}

/** Signals sent to dev itself that the command should get too. */
const FORWARDED = ['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const
/**
 * From a terminal, Ctrl-C and Ctrl-\ reach the whole foreground group, command included, so dev only
 * outlives them (forwarding would deliver them twice: a REPL would take two Ctrl-Cs as "exit").
 * Without a terminal they can only have been sent to dev, so they are forwarded too.
 */
const TERMINAL = ['SIGINT', 'SIGQUIT'] as const

/** How `dev run` runs its arguments: the program and its argv. */
export function oneOffArgv(args: readonly string[], types: readonly ProcessType[]): string[] {
  const [first, ...rest] = args
  if (first === undefined) throw new UsageError('dev run needs a command, as in "dev run rake db:migrate"')
  const type = types.find((candidate) => candidate.name === first)
  // A Procfile type runs its command with the extra arguments appended, each quoted as one literal
  // word, so the shell passes them on exactly as given.
  if (type) {
    const command = rest.length === 0 ? type.command : `${type.command} ${quote(rest)}`
    // A plain command replaces the shell, so it gets signals itself and its own status is reported.
    return ['/bin/sh', '-c', isSimpleCommand(command) ? `exec ${command}` : command]
  }
  // One argument is shell code ("echo $PORT && x"); several are the argv itself, never re-parsed.
  if (rest.length === 0) return ['/bin/sh', '-c', '--', first]
  return [first, ...rest]
}

/**
 * `dev run`: runs one command with the app's environment (env files, PORT = the base port,
 * PS=run.1) in the app root, with the terminal's stdin, stdout and stderr. Resolves to the
 * command's exit status (128 + signal if a signal killed it).
 */
export async function runOneOff(args: readonly string[], options: RunOptions, io: RunIo): Promise<number> {
  const files = resolveAppFiles(options, io.cwd)
  // A Procfile is optional here, as it only supplies the commands of process types: its errors are
  // warnings, and its valid entries can still be run.
  const procfileText = await readTextFileIfExists(files.procfile)
  const procfile = procfileText === undefined ? undefined : scanProcfile(procfileText, displayPath(files.procfile, files.cwd))
  for (const problem of procfile?.problems ?? []) io.warn(`warning: ${formatProblem(problem)}`)
  const types = procfile?.types ?? []
  const env = await loadAppEnv(files, io.env)
  const port = resolveBasePort({flag: options.port, envFiles: env.vars.get('PORT'), shell: io.env.PORT})
  const [program, ...argv] = oneOffArgv(args, types)

  // Handlers go in before the command starts: a signal that came between the two would otherwise
  // kill dev by default and leave the command running.
  let child: ChildProcess | undefined
  const early: NodeJS.Signals[] = []
  const forwarded = io.interactive ? FORWARDED : [...FORWARDED, ...TERMINAL]
  const forwarders = forwarded.map((signal) => [signal, () => (child ? child.kill(signal) : early.push(signal))] as const)
  const ignore = () => {}
  for (const [signal, forward] of forwarders) io.signals.on(signal, forward)
  if (io.interactive) for (const signal of TERMINAL) io.signals.on(signal, ignore)
  child = spawn(program!, argv, {
    cwd: files.root,
    env: processEnv(io.env, env.vars, {PORT: String(port), PS: 'run.1', DYNO: 'run.1'}),
    stdio: 'inherit',
  })
  const started = child
  for (const signal of early) started.kill(signal)
  try {
    return await new Promise<number>((resolve, reject) => {
      started.once('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') reject(new DevError(`command not found: ${program}; is it installed and on PATH?`, {exitCode: 127}))
        else reject(error)
      })
      started.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)))
    })
  } finally {
    for (const [signal, forward] of forwarders) io.signals.off(signal, forward)
    for (const signal of TERMINAL) io.signals.off(signal, ignore)
  }
}
