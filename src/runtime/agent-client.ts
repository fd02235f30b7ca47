import type {IncomingMessage} from 'node:http'
import type {Readable} from 'node:stream'

/** An answer of the agent API: the status, the parsed JSON (the text when it is not JSON), the text. */
export interface AgentAnswer {
  status: number
  json: any
  text: string
}

/**
 * What the operating commands (ps, scale, restart, stop, logs …) talk to: the agent of a host over
 * SSH, or the control socket of a `dev start` running in the app root. One API, two transports.
 */
export interface AgentClient {
  /** The host's name, or `local`: what messages and prefixes call it. */
  readonly name: string
  /** A call: the status and the parsed answer. A body is JSON, bytes or a stream. */
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<AgentAnswer>
  /** A request whose answer is read as it comes (the log stream). */
  request(method: string, path: string, options?: {body?: Buffer | Readable; headers?: Record<string, string>}): Promise<IncomingMessage>
  close(): void
}
