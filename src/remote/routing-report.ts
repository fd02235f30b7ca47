import type {AppRouting} from './app-api.js'

/** `dev router`: how the router of one host treats the app. */
export function formatRouting(routing: AppRouting): string {
  const fields: [string, string][] = [
    ['Maintenance', routing.maintenance ? 'on (every request gets 503, H80)' : 'off'],
    ['Request timeout', `${routing.request_timeout_seconds}s (no first byte from a dyno in this time: 503, H12)`],
    ['Idle timeout', `${routing.idle_timeout_seconds}s (an answer or WebSocket quiet both ways this long is cut: H15)`],
    ['Domains', routing.domains.length === 0 ? 'none (while it is the only app running on the host, it gets every request)' : routing.domains.join(', ')],
  ]
  return `=== ${routing.name} router settings\n${fields.map(([name, value]) => `${`${name}:`.padEnd(17)}${value}`).join('\n')}\n`
}
