import {Command, Flags} from '@oclif/core'

import {appFileOptions, appFlags} from '../cli/app-flags.js'
import {stderrChalk} from '../cli/colour.js'
import {resolveAppFiles} from '../runtime/app-files.js'
import {checkApp} from '../runtime/check.js'
import {formatProblem} from '../runtime/problem.js'

export default class Check extends Command {
  static summary = 'Validate the Procfile and the env files'
  static description = `Reads the Procfile and every env file that "dev start" would load, and reports each problem as FILE:LINE: message.
Exits 1 when there is an error, 0 when there are only warnings.`

  static examples = [
    {description: 'Check the app in the current directory', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Check another app, with a test env file', command: '<%= config.bin %> <%= command.id %> -d fixtures/node-web -e .env.test'},
    {description: 'Machine-readable report', command: '<%= config.bin %> <%= command.id %> --json'},
  ]

  static flags = {
    ...appFlags,
    json: Flags.boolean({description: 'print the report as JSON on stdout'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Check)
    const report = await checkApp(resolveAppFiles(appFileOptions(flags)))
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
    } else {
      const chalk = stderrChalk()
      for (const problem of report.problems) {
        const line = formatProblem(problem)
        process.stderr.write(`${problem.severity === 'error' ? chalk.red(line) : chalk.yellow(line)}\n`)
      }
      if (report.valid) process.stdout.write(`valid procfile detected (${report.processes.map((type) => type.name).join(', ')})\n`)
    }
    if (!report.valid) this.exit(1)
  }
}
