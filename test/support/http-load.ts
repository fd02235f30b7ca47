import {Agent, request} from 'node:http'

export interface LoadCounts {
  sent: number
  ok: number
  /** Statuses other than 2xx, each as often as it came. */
  other: number[]
  /** Requests that got no answer at all. */
  errors: number
}

/** One GET through a router, as a client on loopback sends it. */
export function get(port: number, path = '/', agent: Agent | false = false, host = 'shop.example.com'): Promise<{status: number; body: string}> {
  return new Promise((resolve, reject) => {
    request({host: '127.0.0.1', port, path, headers: {host}, agent}, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => (body += chunk.toString()))
      res.on('end', () => resolve({status: res.statusCode!, body}))
    })
      .on('error', reject)
      .end()
  })
}

/**
 * Continuous GETs through the routers on `ports` (one client each, keep-alive, on loopback) until
 * stopped; resolves to what they got. Bounded: one request at a time per port.
 */
export function startLoad(ports: readonly number[]): {stop(): Promise<LoadCounts>} {
  const counts: LoadCounts = {sent: 0, ok: 0, other: [], errors: 0}
  const agent = new Agent({keepAlive: true})
  let running = true
  const clients = ports.map(async (port) => {
    while (running) {
      counts.sent += 1
      try {
        const {status} = await get(port, '/', agent)
        if (status >= 200 && status < 300) counts.ok += 1
        else counts.other.push(status)
      } catch {
        counts.errors += 1
        // A router that is down refuses at once: do not spin.
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    }
  })
  return {
    async stop() {
      running = false
      await Promise.all(clients)
      agent.destroy()
      return counts
    },
  }
}
