/** The filesystem is full (or the user's quota is): the one system error a user can act on. */
export function isDiskFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? ((error as Error | undefined)?.cause as NodeJS.ErrnoException | undefined)?.code
  return code === 'ENOSPC' || code === 'EDQUOT'
}

/** What the agent answers when its disk is full. */
export const DISK_FULL_MESSAGE = "the host's disk is full (no space left under the agent's home): free some space there (dev hosts status shows what the apps use), then try again"

/** A request the agent refuses: `status` is the HTTP status of the answer, the message says why. */
export class AppError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}
