import type {ChildProcess} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdir, rm} from 'node:fs/promises'
import {constants as osConstants} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {execa} from 'execa'

import {LineSplitter, linesOf} from '../runtime/line-splitter.js'
import {processStartTime, releaseChild, signalGroup, spawnArgvGroup} from '../runtime/process-group.js'
import {readProcfile, RELEASE_TYPE, type ProcessType} from '../runtime/procfile.js'
import {oneOffArgv} from '../runtime/run-one-off.js'
import {Supervisor, type DynoEvent, type DynoSpec} from '../runtime/supervisor.js'
import type {DynoInfo, DynoState, FormationItem} from '../runtime/dyno-api.js'
import type {agentPaths} from './agent-home.js'
import type {AgentSettings} from './agent-settings.js'
import {AppError} from './app-error.js'
import {checkEnvVars} from './app-store.js'
import {DynoRecordWriter, type DynoRecord} from './dyno-records.js'
import {initialFormation, MAX_QUANTITY, readFormation, writeFormation, type Formation} from './formation-file.js'
import type {LogSink} from './log-sink.js'
import type {PortAllocator} from './port-allocator.js'
import {waitForAccept} from '../runtime/port-probe.js'
import type {Routing} from './routing-store.js'
import {RunProcess} from './run-process.js'
import {scriptCommand, spawnOnTerminal, type TtyRequest} from './run-terminal.js'
import {Backend} from '../router/backend.js'
import {Balancer} from '../router/balancer.js'
import {readWebHealthChecks, runHealthCheck, type HealthCheck} from '../router/health-check.js'
import type {RoutedApp} from '../router/router.js'

/** A release as its dynos see it: its number, where they run, and their config. */
export interface ReleaseParts {
  v: number
  dir: string
  config: Record<string, string>
  sourceVersion: string | null
  /** Run the Procfile's `release` command before switching (deploys and config changes; not rollbacks). */
  releasePhase?: boolean
}

/** What a release gives its dynos: the process types of its Procfile, the health checks of its app.json. */
export interface ReleaseContext extends ReleaseParts {
  types: ProcessType[]
  checks: HealthCheck[]
}

interface Instance {
  /** Unique on this host, so a replacement `web.1` runs beside the one it replaces. */
  key: string
  name: string
  type: string
  number: number
  release: number
  command: string
  port: number
  state: DynoState
  since: Date
  restarts: number
  pid?: number
  startTime?: number
  /** Stops a boot check under way. */
  boot?: AbortController
  /** The last lines of output, for the error of a release whose dynos do not come up. */
  tail: string[]
  /** How its last run ended, when it crashed: kept apart from the output of the restart after it. */
  crash?: {tail: string[]; bootTimeout: boolean}
  /** Set when the boot check gave up (R10), until the kill it ordered is seen. */
  bootTimedOut?: boolean
  /** A web dyno as the router sees it. */
  backend?: Backend
  /** False while a new web dyno waits for its health gate: up, but taking no requests yet. */
  routable: boolean
}

/** A one-off dyno (`run.N`): one command, never restarted. */
interface Run {
  name: string
  number: number
  release: number
  command: string
  port: number
  since: Date
  process: RunProcess
  /** Kills a detached run that outlives its time limit. */
  timeLimit?: NodeJS.Timeout
}

/** Lines of each dyno kept for error messages. */
const TAIL_LINES = 10

/**
 * The dynos of one app on a host: its formation run by the same Supervisor as `dev start`, each
 * dyno's output into the app's log stream through a FIFO (so dynos outlive an agent restart and
 * are adopted by the next agent), web dynos `up` once they accept on their PORT.
 */
export class AppDynos {
  private readonly supervisor: Supervisor
  private readonly instances = new Map<string, Instance>()
  private readonly records: DynoRecordWriter
  /** The release the formation runs. */
  private current?: ReleaseContext
  /** Earlier releases whose dynos still serve: made current with `?restart=0`, not replaced since. */
  private readonly unrestarted = new Set<number>()
  /** Old dynos being stopped after a switch. */
  private readonly retiring = new Set<Promise<void>>()
  /** Changes to the dynos (a switch, scaling, restarts) happen one at a time. */
  private queue: Promise<unknown> = Promise.resolve()
  /** One-off dynos by name. */
  private readonly runs = new Map<string, Run>()
  /** formation.json, once read; undefined before the first release. */
  private formation?: Formation
  /** Set when the app is destroyed: no run starts any more. */
  private destroyed = false

  constructor(
    private readonly app: string,
    private readonly paths: ReturnType<ReturnType<typeof agentPaths>['app']>,
    private readonly settings: AgentSettings,
    private readonly ports: PortAllocator,
    private readonly log: LogSink,
    private readonly routing: () => Routing,
  ) {
    const backoff = settings.restart_backoff
    this.supervisor = new Supervisor(
      {
        stopTimeoutMs: settings.stop_grace_seconds * 1000,
        restart: 'always',
        backoff: {initialMs: backoff.initial_seconds * 1000, maxMs: backoff.max_seconds * 1000, resetAfterMs: backoff.reset_after_seconds * 1000},
      },
      {onEvent: (event) => this.onEvent(event), onOutput: (key, block) => this.onOutput(key, block)},
    )
    this.records = new DynoRecordWriter(paths.dynos)
  }

  /** The app as the router sees it: the web dynos of the current release that are up and through their gate. */
  readonly routed: RoutedApp = {
    backends: () => {
      const backends: Backend[] = []
      for (const instance of this.instances.values()) if (instance.backend && instance.state === 'up' && instance.routable && this.serves(instance.release)) backends.push(instance.backend)
      return backends
    },
    whyNoBackend: () => {
      const web = [...this.instances.values()].filter((instance) => instance.type === 'web' && instance.state !== 'stopping' && this.serves(instance.release))
      if (web.length === 0) return 'none'
      return web.some((instance) => instance.state === 'starting' || instance.state === 'up') ? 'starting' : 'crashed'
    },
    maintenance: () => this.routing().maintenance,
    firstByteTimeoutMs: () => this.routing().request_timeout_seconds * 1000,
    idleTimeoutMs: () => this.routing().idle_timeout_seconds * 1000,
    releaseDir: () => this.current?.dir,
    balancer: new Balancer(),
    log: (line) => this.log.append('router', undefined, line),
  }

  /** True once the app runs a release (the router may send it traffic). */
  get serving(): boolean {
    return this.current !== undefined
  }

  /** The dynos, in Procfile order then by number. */
  list(): DynoInfo[] {
    const dynos = this.sorted([...this.instances.values()]).map((instance) => ({
      name: instance.name,
      type: instance.type,
      state: instance.state,
      since: instance.since.toISOString(),
      restarts: instance.restarts,
      release: `v${instance.release}`,
      command: instance.command,
      port: instance.port,
      pid: instance.pid ?? null,
    }))
    const runs = [...this.runs.values()]
      .sort((a, b) => a.number - b.number)
      .map((run) => ({name: run.name, type: 'run', state: 'up' as const, since: run.since.toISOString(), restarts: 0, release: `v${run.release}`, command: run.command, port: run.port, pid: run.process.child.pid ?? null}))
    return [...dynos, ...runs]
  }

  /**
   * Starts a one-off dyno `run.N` on the current release and config (plus `env`), `.profile.d`
   * sourced. Attached, its stdio belongs to the caller (on a pseudo-terminal with `tty`); detached,
   * its output goes to the log stream and it is killed after the detached-run time limit. It is
   * never restarted.
   */
  async startRun({command, env = {}, attach, user, tty}: {command: string[]; env?: Record<string, string>; attach: boolean; user: string; tty?: TtyRequest}): Promise<{name: string; process: RunProcess}> {
    const context = this.current
    if (context === undefined) throw new AppError(422, `app ${this.app} runs no slug yet; deploy one before running commands`)
    checkEnvVars(env, 'variable')
    const terminal = tty === undefined ? undefined : {script: scriptCommand(), tty}
    const port = await this.ports.allocate()
    if (this.destroyed) {
      this.ports.release(port)
      throw new AppError(404, `no app named ${this.app}`)
    }
    // Named after the await, so two runs starting together never take the same name.
    let number = 1
    while (this.runs.has(`run.${number}`)) number++
    const name = `run.${number}`
    const argv = oneOffArgv(command, context.types)
    const runEnv = {...this.env(context, name, port), ...env, PORT: String(port), DYNO: name, PS: name}
    let child: ChildProcess
    try {
      child = terminal === undefined ? spawnArgvGroup({argv, cwd: context.dir, env: runEnv, profile: true}) : spawnOnTerminal({...terminal, argv, cwd: context.dir, env: runEnv})
    } catch (error) {
      this.ports.release(port)
      throw new AppError(422, `cannot start ${name}: ${(error as Error).message.split('\n')[0]}`)
    }
    const display = command.join(' ')
    const run: Run = {name, number, release: context.v, command: display, port, since: new Date(), process: new RunProcess(child, terminal !== undefined)}
    this.runs.set(name, run)
    const say = (text: string) => this.log.append('agent', name, text)
    child.once('error', (error) => say(`Error: could not start the process: ${error.message}`))
    say(`Starting process with command \`${display}\` by ${user}${attach ? '' : ' (detached)'}${tty ? ' (terminal)' : ''}`)
    say('State changed from starting to up')
    child.once('close', (code, signal) => {
      clearTimeout(run.timeLimit)
      say(`Process exited with status ${code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0)}`)
      say('State changed from up to complete')
      this.runs.delete(name)
      this.ports.release(port)
    })
    if (!attach) {
      child.stdin?.end()
      this.outputToLog(child, name)
      const limit = this.settings.detached_run_timeout_seconds
      run.timeLimit = setTimeout(() => {
        say(`Stopping process with SIGKILL: a detached run may last ${limit} s`)
        run.process.kill()
      }, limit * 1000).unref()
    }
    return {name, process: run.process}
  }

  /** A child's stdout and stderr into the log stream as `app[name]` lines; resolves to its last lines. */
  private outputToLog(child: ChildProcess, name: string): Promise<string[]> {
    const tail: string[] = []
    const add = (block: Buffer) => {
      this.log.appendBlock('app', name, block)
      tail.push(...linesOf(block).map((line) => line.toString('utf8')))
      tail.splice(0, Math.max(0, tail.length - TAIL_LINES))
    }
    const ended = [child.stdout!, child.stderr!].map(
      (stream) =>
        new Promise<void>((resolve) => {
          const splitter = new LineSplitter()
          stream.on('data', (chunk: Buffer) => {
            const block = splitter.push(chunk)
            if (block) add(block)
          })
          stream.once('close', () => {
            const rest = splitter.flush({keepSplitCharacter: false})
            if (rest) add(rest)
            resolve()
          })
        }),
    )
    return Promise.all(ended).then(() => tail)
  }

  /**
   * The release phase (the Procfile's `release` command) of a new release: run once, in the new
   * release's directory with its config, before any of its dynos start. Anything but exit 0 (or
   * running past release_timeout_seconds) refuses the release.
   */
  private async releasePhase(context: ReleaseContext, command: string): Promise<void> {
    const name = `release.${context.v}`
    const say = (text: string) => this.log.append('agent', name, text)
    const env = this.env(context, name, 0)
    delete env.PORT
    let child: ChildProcess
    try {
      child = spawnArgvGroup({argv: ['/bin/sh', '-c', command], cwd: context.dir, env, profile: true})
    } catch (error) {
      throw new AppError(422, `cannot start the release phase of v${context.v}: ${(error as Error).message.split('\n')[0]}`)
    }
    say(`Starting process with command \`${command}\``)
    child.stdin?.end()
    const lines = this.outputToLog(child, name)
    const limit = this.settings.release_timeout_seconds
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      say(`Stopping process with SIGKILL: the release phase may last ${limit} s`)
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL')
    }, limit * 1000)
    const status = await new Promise<number>((resolve) => {
      child.once('error', () => resolve(127))
      child.once('close', (code, signal) => resolve(code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0)))
    })
    clearTimeout(timer)
    say(`Process exited with status ${status}`)
    if (status === 0) return
    const tail = await lines
    const how = timedOut ? `did not finish within ${limit} s` : `exited with status ${status}`
    throw new AppError(422, `the release phase of v${context.v} (\`${command}\`) ${how}, so nothing was switched${tail.length > 0 ? `; its last lines: ${tail.join(' | ')}` : ''}`)
  }

  /** An attached run's client went away: it gets SIGHUP. */
  runDisconnected(process: RunProcess): void {
    const run = [...this.runs.values()].find((each) => each.process === process)
    if (run) this.log.append('agent', run.name, 'Client connection closed. Sending SIGHUP to all processes')
  }

  /** An attached run outlived the grace after its SIGHUP: it is killed. */
  runLost(process: RunProcess): void {
    const run = [...this.runs.values()].find((each) => each.process === process)
    if (run) {
      this.log.append('agent', run.name, 'Error R16 (Detached) -> An attached process is continuing to run after being sent SIGHUP when its external connection was closed')
      this.log.append('agent', run.name, 'Stopping process with SIGKILL')
    }
  }

  private sorted(instances: Instance[]): Instance[] {
    const order = this.current?.types.map((type) => type.name) ?? []
    return instances.sort((a, b) => order.indexOf(a.type) - order.indexOf(b.type) || a.type.localeCompare(b.type) || a.number - b.number)
  }

  /** Each process type of the running release with its quantity and command. */
  async formationList(): Promise<FormationItem[]> {
    const formation = (await this.readFormation()) ?? {}
    return (this.current?.types ?? []).map((type) => ({type: type.name, quantity: formation[type.name] ?? 0, command: type.command}))
  }

  /**
   * Changes quantities (`{"web": 3}`) and starts or stops dynos to match; scaling makes no release.
   * A type the running release does not have is refused, and nothing changes.
   */
  scale(updates: Formation): Promise<void> {
    return this.serialised(() => this.applyScale(updates))
  }

  private async applyScale(updates: Formation): Promise<void> {
    const types = this.current?.types.map((type) => type.name)
    if (types === undefined) throw new AppError(422, `app ${this.app} runs no slug yet; deploy one before scaling`)
    const unknown = Object.keys(updates).find((type) => !types.includes(type))
    if (unknown !== undefined) throw new AppError(422, `v${this.current!.v} has no process type ${unknown}; it has ${types.join(', ')}`)
    const tooMany = Object.entries(updates).find(([, quantity]) => quantity > MAX_QUANTITY)
    if (tooMany) throw new AppError(422, `at most ${MAX_QUANTITY} dynos of one type; ${tooMany[0]} asked for ${tooMany[1]}`)
    const formation = {...(await this.readFormation()), ...updates}
    await writeFormation(this.paths.formation, formation)
    this.formation = formation
    await this.matchFormation()
  }

  private async readFormation(): Promise<Formation | undefined> {
    this.formation ??= await readFormation(this.paths.formation)
    return this.formation
  }

  /**
   * Switches the app to a release without a gap: the new web dynos start beside the old ones and
   * must pass the health gate within the deploy timeout (a crash fails it at once); then the other
   * types start, the release is recorded, the router switches, and the old dynos are drained and
   * stopped. If the new dynos fail, they are stopped, the old ones keep running, and the error
   * carries the new dynos' last lines.
   */
  activate(plan: ReleaseParts, commit: () => Promise<void>): Promise<void> {
    return this.serialised(() => this.switchTo(plan, commit))
  }

  /**
   * Makes a release current without touching the running dynos (`config set --no-restart`): they
   * keep the config they started with (also when a crash starts them again, as a Dokku container
   * would be) until `dev restart`; new dynos (a restart, a scale-up) get the new release. An agent
   * restart replaces them with dynos of the current release.
   */
  adoptRelease(plan: ReleaseParts, commit: () => Promise<void>): Promise<void> {
    return this.serialised(async () => {
      const context: ReleaseContext = {...plan, types: await readReleaseTypes(plan.dir, plan.v), checks: await readReleaseChecks(plan.dir, plan.v)}
      await commit()
      if (this.current) this.unrestarted.add(this.current.v)
      this.current = context
    })
  }

  /** Whether the router sends requests to the web dynos of release `v`: the current one, or one kept serving by --no-restart. */
  private serves(v: number): boolean {
    return v === this.current?.v || this.unrestarted.has(v)
  }

  private async switchTo(plan: ReleaseParts, commit: () => Promise<void>): Promise<void> {
    const types = await readReleaseTypes(plan.dir, plan.v)
    const context: ReleaseContext = {...plan, types, checks: await readReleaseChecks(plan.dir, plan.v)}
    const releaseCommand = plan.releasePhase ? await readReleaseCommand(plan.dir, plan.v) : undefined
    if (releaseCommand !== undefined) await this.releasePhase(context, releaseCommand)
    const formation = (await this.readFormation()) ?? initialFormation(types.map((type) => type.name))
    // Dynos already stopping (retired by the last switch) are on their way out.
    const old = [...this.instances.values()].filter((instance) => instance.state !== 'stopping')
    const fresh: Instance[] = []
    try {
      // Web first, through its gate; the other types are replaced only once web has succeeded.
      const launchAll = async (web: boolean) => {
        for (const type of types.filter((each) => (each.name === 'web') === web)) for (let number = 1; number <= (formation[type.name] ?? 0); number++) fresh.push(await this.launch(context, type, number, {routable: false}))
      }
      await launchAll(true)
      await this.gate(context, fresh)
      await launchAll(false)
      // Recorded only once its dynos are up, and the old dynos go only once it is recorded.
      await commit()
    } catch (error) {
      await this.removeInstances(fresh)
      throw error
    }
    // The switch: from here the router sends new requests to the new dynos only.
    for (const instance of fresh) instance.routable = true
    if (this.formation === undefined) {
      await writeFormation(this.paths.formation, formation)
      this.formation = formation
    }
    this.current = context
    this.unrestarted.clear()
    this.retire(old)
  }

  /** Starts or stops dynos of the current release to match the formation. */
  private async matchFormation(): Promise<void> {
    const context = this.current
    const formation = (await this.readFormation()) ?? {}
    if (context === undefined) return
    const surplus: Instance[] = []
    for (const type of context.types) {
      const want = formation[type.name] ?? 0
      const running = [...this.instances.values()].filter((instance) => instance.type === type.name && instance.state !== 'stopping')
      surplus.push(...running.filter((instance) => instance.number > want))
      const numbers = new Set(running.map((instance) => instance.number))
      for (let number = 1; number <= want; number++) if (!numbers.has(number)) await this.launch(context, type, number)
    }
    await this.removeInstances(surplus)
  }

  /**
   * Restarts every dyno, one type's, or one dyno (`web`, `web.1`). A web dyno is replaced one at a
   * time, the new one up before the old one stops; other dynos stop and start again.
   */
  restart(target?: string): Promise<string[]> {
    return this.serialised(() => this.restartNow(target))
  }

  private async restartNow(target?: string): Promise<string[]> {
    const chosen = this.sorted([...this.instances.values()]).filter((instance) => instance.state !== 'stopping' && (target === undefined || instance.type === target || instance.name === target))
    if (target !== undefined && chosen.length === 0) throw new AppError(404, `app ${this.app} has no dyno or process type named ${target}`)
    await this.startAgain(chosen)
    return chosen.map((instance) => instance.name)
  }

  /**
   * Stops one dyno, as Heroku's `ps:stop`: a one-off run for good (SIGTERM, SIGKILL after the stop
   * grace). A formation dyno starts again, since the formation still wants it: as in a restart, a
   * web dyno's replacement is up before the old one is drained and stopped, so no request fails.
   */
  async stop(name: string): Promise<void> {
    const run = this.runs.get(name)
    if (run !== undefined) return this.stopRuns([run])
    await this.serialised(async () => {
      const chosen = [...this.instances.values()].filter((instance) => instance.state !== 'stopping' && instance.name === name)
      if (chosen.length === 0) throw new AppError(404, `app ${this.app} has no dyno named ${name}`)
      await this.startAgain(chosen)
    })
  }

  /**
   * Stops and starts dynos again, on the current release: web dynos one at a time, each replacement
   * up before the old one stops. A dyno of an earlier release (one left running by a change made
   * with `?restart=0`) is replaced by one of the current release; others restart as they are.
   */
  private async startAgain(chosen: readonly Instance[]): Promise<void> {
    const context = this.current
    if (context === undefined) return this.supervisor.restart(chosen.map((instance) => instance.key))
    const typeOf = (instance: Instance) => context.types.find((each) => each.name === instance.type)
    for (const instance of chosen.filter((each) => each.type === 'web')) {
      const type = typeOf(instance)
      if (type === undefined) {
        await this.removeInstances([instance])
        continue
      }
      const fresh = await this.launch(context, type, instance.number, {routable: false})
      try {
        await this.gate(context, [fresh])
      } catch (error) {
        await this.removeInstances([fresh])
        throw error
      }
      fresh.routable = true
      await this.removeInstances([instance])
    }
    const others = chosen.filter((instance) => instance.type !== 'web')
    for (const instance of others.filter((each) => each.release !== context.v)) {
      await this.removeInstances([instance])
      const type = typeOf(instance)
      if (type !== undefined) await this.launch(context, type, instance.number)
    }
    const same = others.filter((instance) => instance.release === context.v)
    if (same.length > 0) await this.supervisor.restart(same.map((instance) => instance.key))
  }

  /**
   * After an agent restart: adopts the dynos of the current release that still run (from
   * dynos.json), stops any left from another release, and starts what the formation misses.
   */
  restore(context: ReleaseContext, records: readonly DynoRecord[]): Promise<void> {
    return this.serialised(() => this.adoptOrStart(context, records))
  }

  private async adoptOrStart(context: ReleaseContext, records: readonly DynoRecord[]): Promise<void> {
    this.current = context
    const formation = (await this.readFormation()) ?? {}
    const strays: Instance[] = []
    // Oldest first: of two live dynos with one name (a restart the last agent did not finish), the
    // first keeps the name and the other goes.
    for (const record of [...records].sort((a, b) => (a.start_time ?? 0) - (b.start_time ?? 0))) {
      const fifo = this.fifoPath(record.key)
      if (!isAlive(record)) {
        this.ports.release(record.port)
        await rm(fifo, {force: true})
        continue
      }
      const type = context.types.find((each) => each.name === record.type)
      const named = [...this.instances.values()].some((instance) => instance.name === record.name && !strays.includes(instance))
      const current = record.release === context.v && type?.command === record.command && !this.instances.has(record.key) && !named
      const number = Number(record.name.split('.').pop())
      const instance: Instance = {...record, number, state: 'starting', since: new Date(), restarts: 0, tail: [], routable: true, backend: record.type === 'web' ? new Backend(record.name, record.port) : undefined}
      this.instances.set(record.key, instance)
      this.ports.hold(record.port)
      const spec = current ? this.spec(context, instance, fifo) : {name: record.key, type: record.type, command: record.command, cwd: '/', env: {}, fifo}
      this.supervisor.adopt(spec, record.pid!, Date.now())
      if (!current || (formation[record.type] ?? 0) < number) strays.push(instance)
    }
    // Strays stop in the background: the formation (and the agent's API) need not wait their grace.
    this.retire(strays)
    await this.matchFormation()
  }

  /**
   * After an agent restart, for an app whose release cannot be restored (no slug yet, or a broken
   * one): the dynos the last agent left are stopped rather than left running unsupervised.
   */
  reapOrphans(records: readonly DynoRecord[]): Promise<void> {
    return this.serialised(async () => {
      const live = records.filter((record) => isAlive(record) && !this.instances.has(record.key))
      for (const record of live) {
        this.supervisor.adopt({name: record.key, type: record.type, command: record.command, cwd: '/', env: {}, fifo: this.fifoPath(record.key)}, record.pid!, Date.now())
        this.instances.set(record.key, {...record, number: Number(record.name.split('.').pop()), state: 'starting', since: new Date(), restarts: 0, tail: [], routable: false})
        this.ports.hold(record.port)
      }
      for (const record of records.filter((each) => !isAlive(each))) {
        this.ports.release(record.port)
        await rm(this.fifoPath(record.key), {force: true})
      }
      this.retire([...this.instances.values()])
      await this.persist()
    })
  }

  /** The app is destroyed: every dyno and run stops (with the stop grace), and no run starts any more. */
  destroy(): Promise<void> {
    this.destroyed = true
    return this.serialised(() => this.shutdown())
  }

  /** Stops every dyno (with the stop grace) and forgets them. */
  async shutdown(): Promise<void> {
    await Promise.all([this.supervisor.shutdown(), this.stopRuns()])
    await Promise.all(this.retiring)
    // Nothing is left to adopt: their FIFOs go too.
    await Promise.all([...this.instances.keys()].map((key) => rm(this.fifoPath(key), {force: true})))
    await this.persist()
  }

  /**
   * Leaves every dyno running for the next agent to adopt (an agent upgrade). One-off runs are not
   * adopted (their output and clients are the agent's): they stop with it.
   */
  async detach(): Promise<void> {
    for (const instance of this.instances.values()) instance.boot?.abort()
    this.supervisor.detach()
    await Promise.all([this.persist(), this.stopRuns()])
  }

  /** One-off runs get SIGTERM, then SIGKILL after the stop grace. */
  private async stopRuns(runs: readonly Run[] = [...this.runs.values()]): Promise<void> {
    for (const run of runs) this.log.append('agent', run.name, 'Stopping all processes with SIGTERM')
    const grace = this.settings.stop_grace_seconds
    await Promise.all(
      runs.map((run) =>
        run.process.stop(grace * 1000, () => {
          this.log.append('agent', run.name, `Error R12 (Exit timeout) -> At least one process failed to exit within ${grace} seconds of SIGTERM`)
          this.log.append('agent', run.name, 'Stopping remaining processes with SIGKILL')
        }),
      ),
    )
    // A process that left its run's group may still hold the pipes: it must not keep the agent up.
    for (const run of runs) releaseChild(run.process.child)
  }

  private serialised<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work, work)
    this.queue = result.catch(() => {})
    return result
  }

  /** Starts a dyno; `routable: false` keeps a web dyno out of the router until its gate passes. */
  private async launch(context: ReleaseContext, type: ProcessType, number: number, {routable = true} = {}): Promise<Instance> {
    const name = `${type.name}.${number}`
    const key = `${name}@${randomBytes(4).toString('hex')}`
    const port = await this.ports.allocate()
    const instance: Instance = {key, name, type: type.name, number, release: context.v, command: type.command, port, state: 'starting', since: new Date(), restarts: 0, tail: [], routable, backend: type.name === 'web' ? new Backend(name, port) : undefined}
    const fifo = this.fifoPath(key)
    await mkdir(this.paths.fifos, {recursive: true, mode: 0o700})
    await execa('mkfifo', ['-m', '600', fifo])
    this.instances.set(key, instance)
    this.supervisor.start([this.spec(context, instance, fifo)])
    return instance
  }

  private spec(context: ReleaseContext, instance: Instance, fifo: string): DynoSpec {
    const env = this.env(context, instance.name, instance.port)
    return {name: instance.key, type: instance.type, command: instance.command, cwd: context.dir, env, port: instance.port, profile: true, fifo}
  }

  /** A dyno's environment: the release's config vars, then what the platform sets. */
  private env(context: ReleaseContext, name: string, port: number): Record<string, string> {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: context.dir,
      ...context.config,
      PORT: String(port),
      DYNO: name,
      PS: name,
      DEV_RELEASE: `v${context.v}`,
    }
    if (context.sourceVersion !== null) env.SOURCE_VERSION = context.sourceVersion
    return env
  }

  private fifoPath(key: string): string {
    return join(this.paths.fifos, `${key}.fifo`)
  }

  /** Waits until every instance is up; fails at once when one crashes, or at the deadline. */
  private async waitUp(instances: readonly Instance[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const failed = instances.find((instance) => instance.state === 'crashed' || instance.restarts > 0)
      if (failed) throw this.notUp(failed, 'crashed')
      if (instances.every((instance) => instance.state === 'up')) return
      if (Date.now() >= deadline) throw this.notUp(instances.find((instance) => instance.state !== 'up')!, `was not up within ${timeoutMs / 1000} s`)
      await sleep(50)
    }
  }

  /**
   * The health gate of new web dynos: each must be up (accept on its PORT) and pass the release's
   * HTTP checks (app.json `healthchecks.web`), all within the deploy timeout.
   */
  private async gate(context: ReleaseContext, instances: readonly Instance[]): Promise<void> {
    const timeoutMs = this.settings.deploy_timeout_seconds * 1000
    const deadline = Date.now() + timeoutMs
    await this.waitUp(instances, timeoutMs)
    if (context.checks.length === 0 || instances.length === 0) return
    const signal = AbortSignal.timeout(Math.max(0, deadline - Date.now()))
    const host = this.routing().domains.find((domain) => !domain.hostname.startsWith('*.'))?.hostname ?? 'localhost'
    const failures = await Promise.all(
      instances.map(async (instance) => {
        for (const check of context.checks) {
          const why = await runHealthCheck(check, {port: instance.port, address: instance.backend?.host ?? '127.0.0.1', host}, signal)
          if (why !== undefined) return {instance, why: signal.aborted ? `${why}; the deploy timeout of ${timeoutMs / 1000} s ran out` : why}
        }
        this.log.append('agent', instance.name, `Health check passed: ${context.checks.map((check) => `GET ${check.path}`).join(', ')}`)
        return undefined
      }),
    )
    const failed = failures.find((failure) => failure !== undefined)
    if (failed !== undefined) {
      this.log.append('agent', failed.instance.name, `Health check failed: ${failed.why}`)
      throw this.notUp(failed.instance, `failed its health check: ${failed.why}`)
    }
  }

  private notUp(instance: Instance, what: string): AppError {
    const lines = instance.crash?.tail ?? instance.tail
    const tail = lines.length > 0 ? `; its last lines: ${lines.join(' | ')}` : '; it wrote nothing'
    const how = instance.crash?.bootTimeout ? `did not accept connections on its PORT within ${this.settings.boot_timeout_seconds} s (R10)` : what
    return new AppError(422, `${instance.name} of v${instance.release} ${how}, so nothing was switched${tail}`)
  }

  /** Stops old dynos in the background; shutdown() waits for them. */
  private retire(instances: readonly Instance[]): void {
    if (instances.length === 0) return
    const done = this.removeInstances(instances).finally(() => this.retiring.delete(done))
    this.retiring.add(done)
  }

  private async removeInstances(instances: readonly Instance[]): Promise<void> {
    if (instances.length === 0) return
    for (const instance of instances) {
      instance.boot?.abort()
      instance.state = 'stopping'
      instance.since = new Date()
    }
    // Out of the router now (stopping); their requests in flight finish before the SIGTERM.
    const deadline = Date.now() + this.settings.drain_timeout_seconds * 1000
    await Promise.all(instances.map((instance) => instance.backend?.drain(deadline)))
    // Nothing of the router's holds them open past their SIGTERM: a server's close() waits for kept-alive connections.
    for (const instance of instances) instance.backend?.dropConnections()
    await this.supervisor.remove(instances.map((instance) => instance.key))
    for (const instance of instances) {
      this.instances.delete(instance.key)
      this.ports.release(instance.port)
      await rm(this.fifoPath(instance.key), {force: true})
    }
    await this.persist()
  }

  private persist(): Promise<void> {
    return this.records.save(() =>
      [...this.instances.values()]
        .filter((instance) => instance.pid !== undefined)
        .map(({key, name, type, release, command, port, pid, startTime}) => ({key, name, type, release, command, port, pid, start_time: startTime})),
    )
  }

  private onOutput(key: string, block: Buffer): void {
    const instance = this.instances.get(key)
    if (!instance) return
    this.log.appendBlock('app', instance.name, block)
    const lines = linesOf(block).map((line) => line.toString('utf8'))
    instance.tail = [...instance.tail, ...lines].slice(-TAIL_LINES)
  }

  private onEvent(event: DynoEvent): void {
    if (event.kind === 'signalling') {
      for (const key of event.dynos) {
        const name = this.instances.get(key)?.name
        if (event.signal === 'SIGTERM') this.log.append('agent', name, 'Stopping all processes with SIGTERM')
        else {
          const grace = (event.afterMs ?? 0) / 1000
          if (event.afterMs !== undefined) this.log.append('agent', name, `Error R12 (Exit timeout) -> At least one process failed to exit within ${grace} seconds of SIGTERM`)
          this.log.append('agent', name, 'Stopping remaining processes with SIGKILL')
        }
      }
      return
    }
    const instance = this.instances.get(event.dyno)
    if (!instance) return
    const say = (text: string) => this.log.append('agent', instance.name, text)
    const become = (state: DynoState) => {
      if (instance.state !== state) say(`State changed from ${instance.state} to ${state}`)
      instance.state = state
      instance.since = new Date()
    }
    switch (event.kind) {
      case 'started': {
        instance.pid = event.pid
        instance.startTime = processStartTime(event.pid)
        say(event.adopted ? `Adopted running process ${event.pid} after an agent restart` : `Starting process with command \`${instance.command}\``)
        // A dyno on its way out (draining) that crashed and was started again stays on its way out.
        if (instance.state === 'stopping') void this.persist()
        else if (instance.type === 'web') this.bootCheck(instance)
        else become('up')
        void this.persist()
        break
      }
      case 'exited': {
        instance.boot?.abort()
        instance.pid = undefined
        say(event.status === null ? 'Process exited' : `Process exited with status ${event.status}`)
        if (!event.stopping && instance.state !== 'stopping') {
          instance.crash = {tail: instance.tail, bootTimeout: instance.bootTimedOut === true}
          instance.bootTimedOut = false
          instance.tail = []
          become('crashed')
        }
        void this.persist()
        break
      }
      case 'restarting': {
        instance.restarts += 1
        if (event.delayMs > 0) say(`Restarting in ${event.delayMs / 1000} s (crash ${event.attempt} in a row)`)
        break
      }
      case 'spawn-failed': {
        say(`Error: could not start the process: ${event.message}`)
        if (instance.state !== 'stopping') become('crashed')
        break
      }
      case 'completed':
        break
    }
  }

  /** A web dyno is up once it accepts on its PORT; if it does not within the boot timeout: R10. */
  private bootCheck(instance: Instance): void {
    instance.boot?.abort()
    const boot = new AbortController()
    instance.boot = boot
    if (instance.state !== 'starting') {
      this.log.append('agent', instance.name, `State changed from ${instance.state} to starting`)
      instance.state = 'starting'
      instance.since = new Date()
    }
    const timeoutMs = this.settings.boot_timeout_seconds * 1000
    void waitForAccept(instance.port, Date.now() + timeoutMs, boot.signal).then((accepted) => {
      if (boot.signal.aborted || instance.state !== 'starting') return
      if (accepted !== undefined) {
        // The router connects where the dyno listens (a dyno on `localhost` may be on ::1 only).
        if (instance.backend) instance.backend.host = accepted
        this.log.append('agent', instance.name, 'State changed from starting to up')
        instance.state = 'up'
        instance.since = new Date()
        return
      }
      this.log.append('agent', instance.name, `Error R10 (Boot timeout) -> Web process failed to bind to $PORT within ${timeoutMs / 1000} seconds of launch`)
      this.log.append('agent', instance.name, 'Stopping process with SIGKILL')
      instance.bootTimedOut = true
      this.supervisor.crash(instance.key)
    })
  }
}

/** True when the process a record names still runs (the same process: its start time matches). */
function isAlive(record: DynoRecord): boolean {
  return record.pid !== undefined && record.start_time !== undefined && processStartTime(record.pid) === record.start_time
}

/** A release's HTTP health checks from its app.json (a broken app.json refuses the release). */
export async function readReleaseChecks(dir: string, v: number): Promise<HealthCheck[]> {
  try {
    return await readWebHealthChecks(dir, `v${v}:app.json`)
  } catch (error) {
    throw new AppError(422, (error as Error).message)
  }
}

/** The release phase command of a release's Procfile, if it has one. */
async function readReleaseCommand(dir: string, v: number): Promise<string | undefined> {
  try {
    return (await readProcfile(join(dir, 'Procfile'), `v${v}:Procfile`)).find((type) => type.name === RELEASE_TYPE)?.command
  } catch (error) {
    throw new AppError(422, (error as Error).message)
  }
}

/** A release's process types from the Procfile in its slug (the release phase is no dyno). */
export async function readReleaseTypes(dir: string, v: number): Promise<ProcessType[]> {
  try {
    return (await readProcfile(join(dir, 'Procfile'), `v${v}:Procfile`)).filter((type) => type.name !== RELEASE_TYPE)
  } catch (error) {
    throw new AppError(422, (error as Error).message)
  }
}
