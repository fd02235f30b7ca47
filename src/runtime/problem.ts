/** One finding about a file: an error makes the file unusable, a warning does not. */
export interface Problem {
  /** The file as shown to the user (relative to the working directory when inside it). */
  file: string
  /** 1-based line, or null when the problem concerns the whole file. */
  line: number | null
  severity: 'error' | 'warning'
  message: string
}

/** `FILE:LINE: message` (`FILE: message` for the whole file), with `warning: ` before a warning's message. */
export function formatProblem(problem: Problem): string {
  const tag = problem.severity === 'warning' ? 'warning: ' : ''
  const where = problem.line === null ? problem.file : `${problem.file}:${problem.line}`
  return `${where}: ${tag}${problem.message}`
}

export function errorsOf(problems: readonly Problem[]): Problem[] {
  return problems.filter((problem) => problem.severity === 'error')
}
