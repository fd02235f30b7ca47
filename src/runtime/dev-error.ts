import type {Problem} from './problem.js'

/**
 * An error meant for the user: one line saying what is wrong and what to do.
 * The CLI prints `message` without a stack (unless DEBUG is set) and exits with `exitCode`.
 */
export class DevError extends Error {
  /** Recognises a DevError across copies of this module (built and source). */
  readonly isDevError = true
  readonly exitCode: number
  /** The individual problems behind this error, when there are several (one per line). */
  readonly problems: readonly Problem[]

  constructor(message: string, options: {exitCode?: number; problems?: readonly Problem[]; cause?: unknown} = {}) {
    super(message, {cause: options.cause})
    this.name = new.target.name
    this.exitCode = options.exitCode ?? 1
    this.problems = options.problems ?? []
  }
}

export function isDevError(error: unknown): error is DevError {
  return error instanceof Error && (error as Partial<DevError>).isDevError === true
}

/** Bad flags or arguments: exit code 2, as usage errors conventionally are. */
export class UsageError extends DevError {
  constructor(message: string) {
    super(message, {exitCode: 2})
  }
}
