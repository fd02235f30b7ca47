import {connect} from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'

/** How often a booting dyno's port is tried. */
const PROBE_INTERVAL_MS = 100

/**
 * The loopback address (IPv4, else IPv6) on which something accepts a TCP connection on the port,
 * or undefined: a process that binds `localhost` may have got either.
 */
export async function acceptingAddress(port: number): Promise<string | undefined> {
  for (const host of ['127.0.0.1', '::1']) {
    const accepted = await new Promise<boolean>((resolve) => {
      const socket = connect({host, port})
      socket.once('connect', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (accepted) return host
  }
  return undefined
}

/** Resolves to the accepting address once the port accepts; undefined at the deadline or when `signal` aborts. */
export async function waitForAccept(port: number, deadline: number, signal: AbortSignal): Promise<string | undefined> {
  while (!signal.aborted && Date.now() < deadline) {
    const address = await acceptingAddress(port)
    if (address !== undefined) return signal.aborted ? undefined : address
    await sleep(PROBE_INTERVAL_MS, undefined, {signal}).catch(() => {})
  }
  return undefined
}
