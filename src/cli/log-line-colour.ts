import type {ChalkInstance} from 'chalk'

const LINE = /^(\S+) ([a-z]+)(\[[^\]]*\])?:/

/**
 * Colours a log line `TIME SOURCE[PS]: TEXT` (`router:` without a process) for a terminal: the time dimmed, the source and
 * process in a colour per source (app lines by process type), the text as it is.
 */
export function colourLogLine(line: string, chalk: ChalkInstance): string {
  const match = LINE.exec(line)
  if (!match) return line
  const [head, time, source, ps] = match
  const type = (ps ?? '').slice(1).split('.')[0]!
  const paint = source === 'app' ? APP_COLOURS[hash(type) % APP_COLOURS.length]! : source === 'router' ? 'green' : 'magenta'
  return `${chalk.dim(time)} ${chalk[paint](`${source}${ps ?? ''}:`)}${line.slice(head!.length)}`
}

const APP_COLOURS = ['cyan', 'yellow', 'blue', 'magentaBright', 'greenBright', 'cyanBright'] as const

function hash(text: string): number {
  let sum = 0
  for (const char of text) sum = (sum * 31 + char.charCodeAt(0)) >>> 0
  return sum
}
