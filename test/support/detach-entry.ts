// Starts a supervised process (output on a pipe) and a one-off run beside it (stdin, stdout and
// stderr on pipes), prints their pids, then lets go of both (an agent exiting with its dynos left):
// this process must then exit by itself while they run on. Exits 3 if something still holds it.
import {releaseChild, spawnArgvGroup} from '../../src/runtime/process-group.js'
import {Supervisor} from '../../src/runtime/supervisor.js'

const env = {PATH: process.env.PATH!}
const supervisor = new Supervisor(
  {stopTimeoutMs: 1000, restart: 'always', backoff: {initialMs: 100, maxMs: 100, resetAfterMs: 60_000}},
  {
    onEvent(event) {
      if (event.kind !== 'started') return
      const run = spawnArgvGroup({argv: ['sh', '-c', 'echo started; exec sleep 60'], cwd: process.cwd(), env})
      run.stderr!.resume()
      run.stdout!.once('data', () => {
        process.stdout.write(`${JSON.stringify({dyno: event.pid, run: run.pid})}\n`)
        supervisor.detach()
        releaseChild(run)
        setTimeout(() => process.exit(3), 10_000).unref()
      })
    },
    onOutput() {},
  },
)
supervisor.start([{name: 'web.1', type: 'web', command: 'sleep 60', cwd: process.cwd(), env}])
