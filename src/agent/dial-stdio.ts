import {connect} from 'node:net'
import type {Readable, Writable} from 'node:stream'

/**
 * Bridges stdin and stdout to the agent's API socket, byte for byte: what an SSH exec channel
 * runs, so a client reaches the API through sshd alone (no TCP port is opened on the host).
 * Resolves with the exit status once both directions are done.
 */
export async function dialStdio(socketPath: string, input: Readable = process.stdin, output: Writable = process.stdout): Promise<number> {
  const socket = connect(socketPath)
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' || code === 'ECONNREFUSED' ? 'the agent is not running' : (error as Error).message
    process.stderr.write(`dev-agent: cannot reach ${socketPath}: ${why}; start it with \`dev-agent daemon\`\n`)
    return 1
  }
  return new Promise((resolve) => {
    // The client closing its side (the SSH channel's EOF) closes ours: the agent treats that as a
    // client gone, so its deploy lock is released and work it started for it is abandoned.
    input.pipe(socket)
    socket.pipe(output)
    let failed = false
    socket.once('error', () => (failed = true))
    // Once the agent has hung up, an open stdin must not keep this process alive.
    socket.once('close', () => {
      input.unpipe(socket)
      input.destroy()
      resolve(failed ? 1 : 0)
    })
  })
}
