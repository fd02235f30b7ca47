/**
 * The stream of an attached one-off run, after the HTTP upgrade (`Upgrade: dev-run`): frames of
 * one type byte, a 4-byte big-endian length and the payload, in both directions. It carries the
 * run's request, its stdin, stdout and stderr apart, signals, its terminal's size, and its exit
 * status at the end.
 */
export const Frame = {
  /** client → agent, first frame: the run's JSON request. */
  request: 0,
  stdin: 1,
  /** client → agent: stdin is at its end (empty payload). */
  stdinEnd: 2,
  /** client → agent: a signal name for the run (`SIGINT`). */
  signal: 3,
  /** agent → client. */
  stdout: 4,
  stderr: 5,
  /** agent → client, last frame: `{"status": N}` or `{"error": "..."}` (JSON). */
  exit: 6,
  /** client → agent: the terminal's new size, `{"rows": R, "cols": C}` (JSON; runs with a terminal). */
  resize: 7,
} as const
export type FrameType = (typeof Frame)[keyof typeof Frame]

/** The largest payload of one frame: longer output is sent in several. */
export const MAX_FRAME_BYTES = 1024 * 1024

export function encodeFrame(type: FrameType, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload
  const head = Buffer.alloc(5)
  head.writeUInt8(type, 0)
  head.writeUInt32BE(body.length, 1)
  return Buffer.concat([head, body])
}

/** Splits a byte stream into frames, however it was cut into chunks. */
export class FrameParser {
  private pending: Buffer = Buffer.alloc(0)

  /** The whole frames the chunk completes; throws on a frame over MAX_FRAME_BYTES. */
  push(chunk: Buffer): {type: number; payload: Buffer}[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
    const frames: {type: number; payload: Buffer}[] = []
    while (this.pending.length >= 5) {
      const length = this.pending.readUInt32BE(1)
      if (length > MAX_FRAME_BYTES) throw new Error(`a frame of ${length} bytes is over the limit of ${MAX_FRAME_BYTES}`)
      if (this.pending.length < 5 + length) break
      frames.push({type: this.pending.readUInt8(0), payload: this.pending.subarray(5, 5 + length)})
      this.pending = this.pending.subarray(5 + length)
    }
    return frames
  }
}
