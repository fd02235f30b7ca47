/** A request the agent refuses: `status` is the HTTP status of the answer, the message says why. */
export class AppError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}
