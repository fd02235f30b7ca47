import {constants} from 'node:os'

/**
 * After a hang-up (status 129: the terminal went away, or SIGHUP), dev ends by SIGHUP itself, as an
 * unhandled hang-up would: on Node 20 a normal exit after the terminal has closed can crash while
 * it resets the terminal. Any other status is returned for the command to exit with.
 */
export function endAfterHangUp(status: number): number {
  if (status === 128 + constants.signals.SIGHUP) {
    process.removeAllListeners('SIGHUP')
    process.kill(process.pid, 'SIGHUP')
  }
  return status
}
