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

/** `call` made through `client.request`: a body is sent as JSON unless it is bytes or a stream. */
export async function callThrough(client: Pick<AgentClient, 'request'>, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<AgentAnswer> {
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) || isReadable(body) ? body : Buffer.from(JSON.stringify(body))
  const res = await client.request(method, path, {body: payload, headers})
  return answerOf(res.statusCode ?? 0, await readText(res))
}

/** An answer from its status and text: the JSON the text holds, else the text itself. */
export function answerOf(status: number, text: string): AgentAnswer {
  let json: unknown
  try {
    json = text === '' ? undefined : JSON.parse(text)
  } catch {
    json = text
  }
  return {status, json, text}
}

/** A whole answer as text. */
export async function readText(stream: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

export function isReadable(value: unknown): value is Readable {
  return typeof (value as Readable | undefined)?.pipe === 'function'
}
