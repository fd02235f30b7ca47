/**
 * oclif flags always take a value; `--restart` and `--watch` may stand alone. This rewrites a
 * bare `--NAME` in `argv` (before any `--`) to `--NAME=VALUE`, so `--restart` means
 * `--restart=on-failure`. A value must be attached with `=` (`--watch=src,lib`).
 */
export function withOptionalValues(argv: readonly string[], defaults: Record<string, string>): string[] {
  const end = argv.indexOf('--')
  return argv.map((arg, index) => {
    if (end !== -1 && index > end) return arg
    const name = /^--([a-z-]+)$/.exec(arg)?.[1]
    return name !== undefined && name in defaults ? `--${name}=${defaults[name]}` : arg
  })
}
