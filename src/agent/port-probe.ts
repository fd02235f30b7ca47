import {connect} from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'

/** How often a booting dyno's port is tried. */
const PROBE_INTERVAL_MS = 100

/** True when something accepts a TCP connection on the port on loopback (IPv4, else IPv6). */
export async function acceptsOn(port: number): Promise<boolean> {
  for (const host of ['127.0.0.1', '::1']) {
    const accepted = await new Promise<boolean>((resolve) => {
      const socket = connect({host, port})
      socket.once('connect', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (accepted) return true
  }
  return false
}

/** Resolves true once the port accepts, false at the deadline or when `signal` aborts. */
export async function waitForAccept(port: number, deadline: number, signal: AbortSignal): Promise<boolean> {
  while (!signal.aborted && Date.now() < deadline) {
    if (await acceptsOn(port)) return !signal.aborted
    await sleep(PROBE_INTERVAL_MS, undefined, {signal}).catch(() => {})
  }
  return false
}
