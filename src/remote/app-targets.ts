import type {AgentClient} from '../runtime/agent-client.js'
import {DevError} from '../runtime/dev-error.js'
import {connectLocalControl} from '../runtime/local-control.js'
import {withAgent} from './app-on-hosts.js'
import {projectTargets} from './project-targets.js'
import type {ConnectOptions} from './ssh-connection.js'

export interface TargetOptions {
  root: string
  hosts?: readonly string[]
  app?: string
  connect: ConnectOptions
  /** The command may act on a `dev start` running in the app root when no host is named. */
  local?: boolean
  /** `--local`: act on the local `dev start` even when the project names hosts. */
  forceLocal?: boolean
  /** The command works on hosts, not on an app (`dev apps`): no app name is needed. */
  appless?: boolean
  /** Told at once when a host fails (a live tail goes on with the others); `settle` then does not repeat it. */
  onFailure?: (name: string, error: Error) => void
}

/** What one target did: its name (a host, or `local`) and the work's result or error. */
export interface TargetOutcome<T> {
  name: string
  value?: T
  error?: Error
  /** The failure was shown when it happened. */
  reported?: boolean
}

/** Where an operating command acted: the app's name, and each target's outcome in target order. */
export interface TargetRun<T> {
  app: string
  outcomes: TargetOutcome<T>[]
  /** More than one target: output lines say which one they come from. */
  several: boolean
}

/**
 * Runs `work` against the app on each remote target host in parallel (each host's agent checked
 * to be current), or, with no host named, against the `dev start` running in the app root
 * through its control socket. Failures of some hosts do not stop the others: see `settle`.
 */
export async function onAppTargets<T>(options: TargetOptions, work: (client: AgentClient, app: string, context: {several: boolean}) => Promise<T>): Promise<TargetRun<T>> {
  const targets = await projectTargets({root: options.root, hosts: options.forceLocal ? [] : options.hosts, app: options.app, env: options.forceLocal ? {} : process.env, checkApp: options.forceLocal ? 'never' : options.appless ? 'never' : 'with-hosts'})
  const hosts = options.forceLocal ? [] : targets.hosts
  if (hosts.length === 0) {
    if (!options.local) throw new DevError('no host to work on: pass --host HOST, set DEV_HOST=host1,host2, or list them in dev.json ({"hosts": ["vps1"]})')
    const client = await connectLocalControl(options.root)
    if (client === undefined) throw new DevError(`no host named and no \`dev start\` running in ${options.root}: pass --host HOST (or set DEV_HOST, or list hosts in dev.json), or run \`dev start\` there first`)
    try {
      return {app: targets.app, outcomes: [{name: client.name, value: await work(client, targets.app, {several: false})}], several: false}
    } finally {
      client.close()
    }
  }
  const outcomes = await Promise.all(
    hosts.map(async (host): Promise<TargetOutcome<T>> => {
      try {
        const value = await withAgent(host, options.connect, (agent) => work(agent, targets.app, {several: hosts.length > 1}))
        return {name: host, value}
      } catch (error) {
        options.onFailure?.(host, error as Error)
        return {name: host, error: error as Error, reported: options.onFailure !== undefined}
      }
    }),
  )
  return {app: targets.app, outcomes, several: outcomes.length > 1}
}

/**
 * After the results were shown: when a target failed, throws the error to report (the host's own
 * when it was the only target; else each failure is printed and the error counts them).
 */
export function settle<T>(run: TargetRun<T>, writeError: (line: string) => void): void {
  const failed = run.outcomes.filter((outcome) => outcome.error !== undefined)
  if (failed.length === 0) return
  if (!run.several) throw failed[0]!.error
  for (const {name, error} of failed.filter((outcome) => !outcome.reported)) writeError(targetFailure(name, error!))
  throw new DevError(`${failed.length} of ${run.outcomes.length} hosts failed (above)`)
}

/** The results of the targets that succeeded. */
export function succeeded<T>(run: TargetRun<T>): {name: string; value: T}[] {
  return run.outcomes.filter((outcome) => outcome.error === undefined).map((outcome) => ({name: outcome.name, value: outcome.value as T}))
}

/** Text whose lines start with the target's name when several targets answer. */
export function fromTarget(name: string, text: string, several: boolean): string {
  if (!several || text === '') return text
  return text.replace(/^(?=.)/gm, `${name}: `)
}

/** `vps2: what went wrong`, the host named once. */
export function targetFailure(name: string, error: Error): string {
  return `${name}: ${error.message.startsWith(`${name}: `) ? error.message.slice(name.length + 2) : error.message}`
}
