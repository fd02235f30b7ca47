import {Listr, ListrLogger, ProcessOutput} from 'listr2'

import type {DeployReport} from '../remote/deploy.js'

/** How a deploy shows its progress, and how it is told the deploy ended. */
export interface DeployProgress {
  report: DeployReport
  /** The deploy ended (with its error, if it failed); resolves once the display is done. */
  end(error?: unknown): Promise<void>
}

/**
 * On a terminal: one listr2 task per host (plus one for the whole deploy), each showing its latest
 * step, and the last lines of builds and the release phase beneath it. Elsewhere: plain lines on
 * stderr (`vps1: built slug …`, `vps1 | <output>`).
 */
export function deployProgress(hosts: readonly string[], tty = process.stderr.isTTY === true): DeployProgress {
  if (!tty) {
    return {
      report: {
        step: (host, text) => process.stderr.write(`${host === undefined ? '' : `${host}: `}${text}\n`),
        output: (host, line) => process.stderr.write(`${host} | ${line}\n`),
        warn: (text) => process.stderr.write(`warning: ${text}\n`),
      },
      end: async () => {},
    }
  }
  const tasks = new Map<string, {title: (text: string) => void; output: (line: string) => void}>()
  let finish!: (error?: unknown) => void
  const finished = new Promise<void>((resolve, reject) => (finish = (error) => (error === undefined ? resolve() : reject(error))))
  // Every task waits for the end of the deploy; a failure marks them failed, without a second message.
  finished.catch(() => {})
  const names = ['deploy', ...hosts]
  const logger = new ListrLogger({processOutput: new ProcessOutput(process.stderr, process.stderr)})
  const list = new Listr(
    names.map((name) => ({
      title: name,
      task: async (_: unknown, task: {title: string; output: string}) => {
        tasks.set(name, {title: (text) => (task.title = `${name}: ${text}`), output: (line) => (task.output = line)})
        await finished
      },
      rendererOptions: {outputBar: 5, persistentOutput: false},
    })),
    {concurrent: true, exitOnError: false, registerSignalListeners: false, rendererOptions: {showErrorMessage: false, logger, collapseSubtasks: false}},
  )
  const shown = list.run().catch(() => {})
  return {
    report: {
      step: (host, text) => tasks.get(host ?? 'deploy')?.title(text),
      output: (host, line) => tasks.get(host)?.output(line),
      warn: (text) => tasks.get('deploy')?.output(`warning: ${text}`),
    },
    async end(error) {
      finish(error)
      await shown
    },
  }
}
