import {AppError} from '../agent/app-error.js'
import {isDevError} from './dev-error.js'
import type {DynoInfo, FormationItem} from './dyno-api.js'
import type {LocalRoutes} from './local-router.js'
import {takenPortWarnings} from './port-warnings.js'
import {RELEASE_TYPE, type ProcessType} from './procfile.js'
import type {StartPlan} from './start-plan.js'
import type {DynoEvent, DynoSpec, Supervisor} from './supervisor.js'

/** What the processes come from: the Procfile's types, and how to make instance N of one. */
export type ProcessSource = Pick<StartPlan, 'types' | 'specFor'>

interface LocalDyno {
  spec: DynoSpec
  state: DynoInfo['state']
  /** When it entered its state. */
  since: Date
  /** Restarts after a crash. */
  restarts: number
  pid?: number
  /** False once scaling or a reload took it out of the formation: it is on its way out. */
  wanted: boolean
}

export interface LocalDynosParts {
  supervisor: Supervisor
  /** Which web processes accept on their PORT; told of every formation change (the router follows it). */
  routes: LocalRoutes
  source: ProcessSource
  specs: readonly DynoSpec[]
  /** Prints one of dev's own lines. */
  say: (text: string) => void
  /** The processes to run changed (the printer makes room for new names). */
  onFormation: (specs: readonly DynoSpec[]) => void
}

/**
 * The processes of a running `dev start` as the control socket shows and changes them, in the host
 * agent's terms: each process's state (web ones `up` once they accept on their PORT), scaling a
 * type up or down, restarting, stopping. Changes happen one at a time, none while a reload under
 * --watch is replacing the processes, and none once dev start is stopping.
 */
export class LocalDynos {
  private readonly dynos = new Map<string, LocalDyno>()
  private source: Promise<ProcessSource>
  private queue: Promise<unknown> = Promise.resolve()
  private closing = false
  /** A reload's processes not started yet; changes wait until they are. */
  private reload?: {waiting: Set<string>; done: () => void; started: Promise<void>}

  constructor(private readonly parts: LocalDynosParts) {
    this.source = Promise.resolve(parts.source)
    for (const spec of parts.specs) this.dynos.set(spec.name, newDyno(spec))
  }

  /** The processes, in Procfile order then by number, with those on their way out. */
  async list(): Promise<DynoInfo[]> {
    const {types} = await this.source
    return this.sorted([...this.dynos.values()], types).map(({spec, state, since, restarts, pid}) => ({
      name: spec.name,
      type: spec.type,
      state,
      since: since.toISOString(),
      restarts,
      release: 'local',
      command: spec.command,
      port: spec.port ?? 0,
      pid: pid ?? null,
    }))
  }

  /** Every type of the Procfile but release (unless it runs), with how many run. */
  async formation(): Promise<FormationItem[]> {
    const {types} = await this.source
    const counts = new Map<string, number>()
    for (const dyno of this.wanted()) counts.set(dyno.spec.type, (counts.get(dyno.spec.type) ?? 0) + 1)
    return types.filter((type) => type.name !== RELEASE_TYPE || counts.has(type.name)).map((type) => ({type: type.name, quantity: counts.get(type.name) ?? 0, command: type.command}))
  }

  /**
   * Starts the missing processes of each type (`web.2` on its port) and stops the surplus ones (the
   * highest numbers); answers with the new formation. Stopped this way, a process is no crash.
   */
  scale(updates: readonly {type: string; quantity: number}[]): Promise<FormationItem[]> {
    return this.change(async () => {
      const quantities = new Map(updates.map(({type, quantity}) => [type, quantity]))
      const listed = (await this.formation()).map((item) => item.type)
      for (const type of quantities.keys()) {
        if (listed.includes(type)) continue
        const why = type === RELEASE_TYPE ? 'release runs once per deploy, not in the formation' : `the Procfile has no process type ${type}`
        throw new AppError(422, `${why}; it has ${listed.join(', ')}`)
      }
      const {specFor} = await this.source
      const starting: DynoSpec[] = []
      const surplus: LocalDyno[] = []
      for (const [type, quantity] of quantities) {
        const running = this.wanted().filter((dyno) => dyno.spec.type === type)
        surplus.push(...running.filter((dyno) => instanceOf(dyno.spec) > quantity))
        const numbers = new Set(running.map((dyno) => instanceOf(dyno.spec)))
        for (let instance = 1; instance <= quantity; instance++) if (!numbers.has(instance)) starting.push(refusedAs422(() => specFor(type, instance)))
      }
      this.parts.say(`scaling to ${[...quantities].map(([type, quantity]) => `${type}=${quantity}`).join(', ')}`)
      for (const warning of await takenPortWarnings(starting)) this.parts.say(warning)
      if (this.closing) throw stopping()
      for (const dyno of surplus) dyno.wanted = false
      for (const spec of starting) this.dynos.set(spec.name, newDyno(spec))
      this.formationChanged()
      this.parts.supervisor.start(starting)
      await this.parts.supervisor.remove(surplus.map((dyno) => dyno.spec.name))
      for (const dyno of surplus) if (this.dynos.get(dyno.spec.name) === dyno) this.dynos.delete(dyno.spec.name)
      return this.formation()
    })
  }

  /** Restarts every process, one type's (`web`) or one (`web.1`); answers with their names once they run again. */
  restart(target?: string): Promise<string[]> {
    return this.change(async () => {
      const {types} = await this.source
      const chosen = this.sorted(this.wanted(), types).filter((dyno) => target === undefined || dyno.spec.type === target || dyno.spec.name === target)
      if (target !== undefined && chosen.length === 0) throw this.unknown(target, 'no process or process type')
      const names = chosen.map((dyno) => dyno.spec.name)
      this.parts.say(`restarting ${target ?? 'all processes'}`)
      await this.parts.supervisor.restart(names)
      return names
    })
  }

  /** Stops one process; as the formation still has it, it starts again (Heroku's ps:stop). */
  stop(name: string): Promise<string> {
    return this.change(async () => {
      if (this.dynos.get(name)?.wanted !== true) throw this.unknown(name, 'no process')
      this.parts.say(`stopping ${name}; it starts again, as the formation has it`)
      await this.parts.supervisor.restart([name])
      return name
    })
  }

  /**
   * A reload under --watch: `specs` replace every process, and `source` (the Procfile read again)
   * replaces the old one once read (the old one stays if it cannot be).
   */
  replaceFormation(specs: readonly DynoSpec[], source: Promise<ProcessSource>): void {
    const old = this.source
    this.source = source.catch(() => old)
    for (const [name, dyno] of this.dynos) {
      dyno.wanted = false
      if (dyno.pid === undefined) this.dynos.delete(name)
    }
    for (const spec of specs) this.dynos.set(spec.name, newDyno(spec))
    this.reload?.done()
    let done!: () => void
    const started = new Promise<void>((resolve) => (done = resolve))
    this.reload = {waiting: new Set(specs.map((spec) => spec.name)), done, started}
    if (specs.length === 0) done()
  }

  /** Follows the supervisor's events. */
  onEvent(event: DynoEvent): void {
    if (event.kind === 'signalling') {
      for (const name of event.dynos) this.become(this.dynos.get(name), 'stopping')
      return
    }
    if ((event.kind === 'started' || event.kind === 'spawn-failed') && this.reload?.waiting.delete(event.dyno) && this.reload.waiting.size === 0) this.reload.done()
    const dyno = this.dynos.get(event.dyno)
    if (dyno === undefined) return
    switch (event.kind) {
      case 'started':
        dyno.pid = event.pid
        // A web process is up once it accepts on its PORT (onWebUp), as on a host.
        this.become(dyno, dyno.spec.type === 'web' ? 'starting' : 'up')
        break
      case 'exited':
        dyno.pid = undefined
        // One taken out of the formation is gone once it has exited.
        if (!dyno.wanted) this.dynos.delete(event.dyno)
        else this.become(dyno, event.stopping ? 'stopping' : 'crashed')
        break
      case 'spawn-failed':
        dyno.pid = undefined
        this.become(dyno, 'crashed')
        break
      case 'restarting':
        dyno.restarts += 1
        break
      case 'completed':
        break
    }
  }

  /** The web process `name` accepts on its PORT. */
  onWebUp(name: string): void {
    const dyno = this.dynos.get(name)
    if (dyno?.state === 'starting' && dyno.pid !== undefined) this.become(dyno, 'up')
  }

  /** dev start is stopping: changes are refused from now on. */
  close(): void {
    this.closing = true
    this.reload?.done()
  }

  /** Runs a change in its turn, after any reload under way, unless dev start is stopping. */
  private change<T>(work: () => Promise<T>): Promise<T> {
    const run = async () => {
      await this.reload?.started
      if (this.closing) throw stopping()
      return work()
    }
    const result = this.queue.then(run, run)
    this.queue = result.catch(() => {})
    return result
  }

  private formationChanged(): void {
    const specs = this.wanted().map((dyno) => dyno.spec)
    this.parts.routes.setFormation(specs)
    this.parts.onFormation(specs)
  }

  private wanted(): LocalDyno[] {
    return [...this.dynos.values()].filter((dyno) => dyno.wanted)
  }

  private become(dyno: LocalDyno | undefined, state: DynoInfo['state']): void {
    if (dyno === undefined || dyno.state === state) return
    dyno.state = state
    dyno.since = new Date()
  }

  private sorted(dynos: LocalDyno[], types: readonly ProcessType[]): LocalDyno[] {
    const order = (dyno: LocalDyno) => {
      const at = types.findIndex((type) => type.name === dyno.spec.type)
      return at === -1 ? types.length : at
    }
    return dynos.sort((a, b) => order(a) - order(b) || a.spec.type.localeCompare(b.spec.type) || instanceOf(a.spec) - instanceOf(b.spec))
  }

  private unknown(target: string, what: string): AppError {
    const running = this.wanted().map((dyno) => dyno.spec.name)
    return new AppError(404, `dev start runs ${what} named ${target}; it runs ${running.length > 0 ? running.join(', ') : 'nothing'}`)
  }
}

function stopping(): AppError {
  return new AppError(409, 'dev start is stopping; nothing can be changed any more')
}

function newDyno(spec: DynoSpec): LocalDyno {
  return {spec, state: 'starting', since: new Date(), restarts: 0, wanted: true}
}

/** N of `type.N`. */
function instanceOf(spec: DynoSpec): number {
  return Number(spec.name.slice(spec.type.length + 1))
}

/** A spec that cannot be made (a port past 65535) refuses the request, with the reason. */
function refusedAs422(make: () => DynoSpec): DynoSpec {
  try {
    return make()
  } catch (error) {
    throw isDevError(error) ? new AppError(422, error.message) : error
  }
}
