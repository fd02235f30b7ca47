import {portInUse} from '../runtime/ports.js'

/**
 * Hands out dyno ports from the agent's range: never one another dyno holds, never one something
 * else on the host listens on. It goes round the range rather than reusing the port just freed, so
 * a new dyno never gets the port an old one is still draining on.
 */
export class PortAllocator {
  private readonly held = new Set<number>()
  private next: number

  constructor(private readonly range: readonly [number, number]) {
    this.next = range[0]
  }

  /** Marks a port as held (an adopted dyno's). */
  hold(port: number): void {
    this.held.add(port)
  }

  release(port: number): void {
    this.held.delete(port)
  }

  async allocate(): Promise<number> {
    const [from, to] = this.range
    const size = to - from + 1
    for (let tried = 0; tried < size; tried++) {
      const port = this.next
      this.next = port === to ? from : port + 1
      if (this.held.has(port)) continue
      // Held before the check, so two allocations under way never pick the same port.
      this.held.add(port)
      if (!(await portInUse(port))) return port
      this.held.delete(port)
    }
    throw new Error(`no free port left in ${from}-${to}; widen dyno_port_range in agent.json`)
  }
}
