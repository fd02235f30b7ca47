import type {AppRouting} from './app-api.js'

/** `dev router`: how the router of one host treats the app. */
export function formatRouting(routing: AppRouting): string {
  const fields: [string, string][] = [
    ['Maintenance', routing.maintenance ? 'on (every request gets 503, H80)' : 'off'],
    ['Request timeout', `${routing.request_timeout_seconds}s (no first byte from a dyno in this time: 503, H12)`],
    ['Idle timeout', `${routing.idle_timeout_seconds}s (an answer or WebSocket quiet both ways this long is cut: H15)`],
    ['Domains', domainsOf(routing)],
  ]
  return `=== ${routing.name} router settings\n${fields.map(([name, value]) => `${`${name}:`.padEnd(17)}${value}`).join('\n')}\n`
}

/** Its domains, and whether other Hosts come to it too (or nothing does). */
function domainsOf({domains, every_host}: AppRouting): string {
  if (every_host) return `${domains.length === 0 ? 'none' : domains.join(', ')} (and any other Host: the only app serving on this host)`
  return domains.length === 0 ? 'none (no request reaches it: dev domains add NAME)' : domains.join(', ')
}
