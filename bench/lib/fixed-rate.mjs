// An open-loop HTTP/1.1 load client for bench/router.mjs: sends GET / at a fixed rate over a set of
// kept-alive connections and measures each answer's latency from the moment its request came due
// (the client's 1 ms tick that found it due), not from when a connection was free to send it: a
// stalled server is charged for the requests that queue behind it. wrk, the closed-loop client the issue names, waits for each answer
// before it sends the next request, so at saturation its p99 mostly measures queueing; this
// separates what the server adds to one request at a load it can carry. (wrk2 does this but
// is not packaged in Debian 12.)
// Not a bench script itself. Expects small answers with a Content-Length, as the bench app sends.
import {connect} from 'node:net'

/**
 * GET / on 127.0.0.1:port at `rate` requests/s for `seconds`, over up to `connections`
 * connections. Resolves to {sent, answered, failed, p50, p99, p999} (ms) once every answer is in.
 */
export function fixedRate({port, rate, seconds, connections = 32, host = 'bench'}) {
  const request = Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`)
  const total = Math.round(rate * seconds)
  const latencies = new Float64Array(total)
  let answered = 0
  let failed = 0
  let next = 0
  /** Requests whose time has come while every connection was busy: their due times, in order. */
  const waiting = []
  /** Connections free to send on (the server has not closed them). */
  const idle = new Set()
  const sockets = new Set()
  const start = performance.now()
  return new Promise((resolve) => {
    let done = false
    const finish = (giveUp = false) => {
      if (done || (!giveUp && answered + failed < total)) return
      done = true
      // Whatever was not answered by now failed (a server that went away, or the deadline).
      failed = total - answered
      clearInterval(ticker)
      clearTimeout(deadline)
      for (const socket of sockets) socket.destroy()
      const sorted = latencies.subarray(0, answered).sort()
      const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
      resolve({sent: total, answered, failed, p50: at(0.5), p99: at(0.99), p999: at(0.999)})
    }
    const send = (socket, due) => {
      idle.delete(socket)
      socket.due = due
      socket.write(request)
    }
    const free = (socket) => {
      if (waiting.length > 0) send(socket, waiting.shift())
      else idle.add(socket)
    }
    const open = () => {
      const socket = connect({port, host: '127.0.0.1', noDelay: true})
      sockets.add(socket)
      let pending = Buffer.alloc(0)
      socket.once('connect', () => {
        socket.connected = true
        free(socket)
      })
      socket.on('data', (chunk) => {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
        for (;;) {
          const end = pending.indexOf('\r\n\r\n')
          if (end === -1) return
          const head = pending.toString('latin1', 0, end)
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
          if (pending.length < end + 4 + length) return
          pending = pending.subarray(end + 4 + length)
          latencies[answered++] = performance.now() - socket.due
          socket.due = undefined
          finish()
          // The server asks to close this connection (nginx does after 1,000 requests): it is
          // closed here, and a new one replaces it.
          if (/\r\nconnection: *close/i.test(head)) return void socket.destroy()
          free(socket)
        }
      })
      // The server's side is closed: nothing more is sent on it, even before 'close' comes.
      socket.on('end', () => idle.delete(socket))
      socket.on('error', () => {})
      socket.on('close', () => {
        sockets.delete(socket)
        idle.delete(socket)
        if (done) return
        // A server that refuses connections: the run ends, its unanswered requests failed.
        if (!socket.connected) return finish(true)
        // A request in flight on a connection that closed failed; a new connection takes its place.
        if (socket.due !== undefined) failed++
        if (answered + failed >= total) return finish()
        open()
      })
    }
    for (let index = 0; index < connections; index++) open()
    // Every millisecond, send what has come due (a 1 ms tick: the schedule is kept to within it).
    const ticker = setInterval(() => {
      const now = performance.now()
      const dueCount = Math.min(total, Math.floor(((now - start) / 1000) * rate))
      while (next < dueCount) {
        next++
        const [socket] = idle
        if (socket === undefined) waiting.push(now)
        else send(socket, now)
      }
    }, 1)
    // A server that stops answering ends the run too.
    const deadline = setTimeout(() => finish(true), (seconds + 30) * 1000)
    if (total === 0) finish(true)
  })
}
