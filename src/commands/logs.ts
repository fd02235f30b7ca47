import type {IncomingMessage} from 'node:http'

import {Command, Flags} from '@oclif/core'
import {Chalk} from 'chalk'

import {colourEnabled} from '../cli/colour.js'
import {colourLogLine} from '../cli/log-line-colour.js'
import {localOrHostsFlags, targetOptions} from '../cli/target-flags.js'
import {failIfAnyFailed, printError} from '../cli/target-output.js'
import {AppApi} from '../remote/app-api.js'
import {fromTarget, onAppTargets, targetFailure} from '../remote/app-targets.js'
import {streamLines} from '../remote/stream-lines.js'

export default class Logs extends Command {
  static summary = "Show the app's merged log stream: dynos, router and agent"
  static description = `The last lines (-n, up to 1500), then, with --tail, new lines as they come until Ctrl-C. Lines read
"TIME SOURCE[PS]: TEXT": app lines are what the dynos print, router lines one per request, agent lines what
happened to the dynos and who changed what. From every host of the app (in time order, each line prefixed with
the host when there are several), or from the \`dev start\` running in the app root.`

  static examples = [
    {description: 'Follow the web dynos', command: '<%= config.bin %> <%= command.id %> --tail --ps web'},
    {description: 'The last 20 router lines', command: '<%= config.bin %> <%= command.id %> -n 20 --source router'},
  ]

  static flags = {
    ...localOrHostsFlags,
    num: Flags.integer({char: 'n', description: 'how many past lines to show', default: 100, min: 1, max: 1500}),
    tail: Flags.boolean({char: 't', description: 'keep showing new lines until Ctrl-C'}),
    ps: Flags.string({char: 'p', description: 'one process type (web) or dyno (web.1)', helpValue: 'TYPE|DYNO'}),
    source: Flags.string({char: 's', description: 'one source', options: ['app', 'router', 'agent']}),
    color: Flags.string({description: 'colour the lines', options: ['auto', 'always', 'never'], default: 'auto'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Logs)
    const chalk = new Chalk({level: colourEnabled(flags.color as 'auto' | 'always' | 'never', process.stdout) ? 1 : 0})
    const streams = new Set<IncomingMessage>()
    // Ctrl-C ends a tail, also one still connecting: that is how one stops reading, not a failure.
    let stopped = false
    const stop = () => {
      stopped = true
      for (const stream of streams) stream.destroy()
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
    const past: {name: string; line: string}[] = []
    try {
      const options = targetOptions(flags, {local: true})
      // A live tail shows a host that fails at once and goes on with the others.
      const onFailure = flags.tail ? (name: string, error: Error) => printError(targetFailure(name, error)) : undefined
      const run = await onAppTargets({...options, onFailure}, async (client, app, {several}) => {
        // A local dev start calls its own lines `dev` where an agent says `agent`.
        const source = client.name === 'local' && flags.source === 'agent' ? 'dev' : flags.source
        const stream = await new AppApi(client, app).log({lines: flags.num, tail: flags.tail, ps: flags.ps, source})
        if (stopped) return stream.destroy()
        streams.add(stream)
        try {
          for await (const line of streamLines(stream)) {
            if (flags.tail) process.stdout.write(fromTarget(client.name, `${colourLogLine(line, chalk)}\n`, several))
            else past.push({name: client.name, line})
          }
        } catch (error) {
          if (!stream.destroyed) throw error
        }
      })
      // The hosts' past lines as one stream, in time order (each line starts with its RFC 3339 UTC time).
      const time = (line: string) => line.slice(0, line.indexOf(' '))
      const sorted = past.map((entry, index) => ({...entry, index, time: time(entry.line)})).sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.index - b.index))
      process.stdout.write(sorted.map(({name, line}) => fromTarget(name, `${colourLogLine(line, chalk)}\n`, run.several)).join(''))
      failIfAnyFailed(run)
    } finally {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
    }
  }
}
