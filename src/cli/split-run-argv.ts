/**
 * Splits `dev run` arguments into dev's own flags and the command: dev's flags come first, and
 * the first argument that is not one of them (or everything after `--`) starts the command, so
 * `dev run rake db:migrate --trace` passes --trace to rake.
 */
export function splitRunArgv(argv: readonly string[], flagsWithValue: readonly string[]): {own: string[]; command: string[]} {
  const own: string[] = []
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!
    if (arg === '--') return {own, command: argv.slice(index + 1)}
    if (!arg.startsWith('-') || arg === '-') return {own, command: argv.slice(index)}
    own.push(arg)
    const takesValue = flagsWithValue.includes(arg)
    if (takesValue && index + 1 < argv.length) own.push(argv[++index]!)
  }
  return {own, command: []}
}

/** dev's flags that take a value, as `dev run` sees them. */
export const RUN_VALUE_FLAGS = ['-f', '--procfile', '-d', '--root', '-e', '--env', '-p', '--port', '--host', '-a', '--app']

/**
 * oclif shows help when `--help` appears anywhere before `--`; for `dev run rake --help` that flag
 * belongs to rake. This puts a `--` between dev's flags and the command, so only `dev run --help`
 * (no command yet) shows dev's help.
 */
export function protectRunCommand(argv: readonly string[]): string[] {
  if (argv[0] !== 'run') return [...argv]
  const rest = argv.slice(1)
  const {own, command} = splitRunArgv(rest, RUN_VALUE_FLAGS)
  if (command.length === 0 || rest[own.length] === '--') return [...argv]
  return ['run', ...own, '--', ...command]
}
