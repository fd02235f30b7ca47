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
