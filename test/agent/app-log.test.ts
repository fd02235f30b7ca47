import {once} from 'node:events'
import {mkdir, readdir, readFile, stat, writeFile} from 'node:fs/promises'
import {createServer, request, type IncomingMessage, type Server} from 'node:http'
import {join} from 'node:path'
import {PassThrough, Writable} from 'node:stream'

import {afterEach, describe, expect, it, vi} from 'vitest'

import {AppError} from '../../src/agent/app-error.js'
import {AppLog, formatLogLine, formatLogTime, MAX_ENTRY_BYTES, parseLogLine} from '../../src/agent/app-log.js'
import {logRoutes} from '../../src/agent/log-routes.js'
import {tempApp} from '../support/temp-app.js'

const LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00) (app|agent|router)(?:\[([^\]]+)\])?: (.*)$/

/** A fresh `apps/<app>/logs` directory (not created yet: AppLog makes it). */
async function logDir(): Promise<string> {
  return join(await tempApp(), 'apps', 'shop', 'logs')
}

function textOf(line: string): string {
  return LINE.exec(line)![4]!
}

async function fileLines(path: string): Promise<string[]> {
  return (await readFile(path, 'utf8')).split('\n').slice(0, -1)
}

/** A reader that takes one chunk and then nothing until `release()`, after which it takes everything. */
function slowReader() {
  const received: string[] = []
  let held: (() => void) | undefined
  let released = false
  const out = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _encoding, callback) {
      received.push(chunk.toString())
      if (released) callback()
      else held = callback
    },
  })
  const release = () => {
    released = true
    held?.()
  }
  return {out, received, release}
}

describe('AppLog', () => {
  it('writes lines as Heroku does: RFC 3339 UTC time with microseconds, source and dyno', async () => {
    const log = new AppLog(await logDir())
    const before = Date.now()
    log.append('app', 'web.1', 'hello')
    log.append('agent', 'api', 'Release v5 created by ann')
    log.append('router', undefined, 'at=info method=GET path="/" status=200')
    const lines = log.recent({lines: 3})
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00 app\[web\.1\]: hello$/)
    expect(lines[1]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00 agent\[api\]: Release v5 created by ann$/)
    expect(lines[2]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00 router: at=info method=GET path="\/" status=200$/)
    // The time is the wall clock's, give or take a minute of slack for a busy machine.
    const micros = parseLogLine(lines[0]!)!.time
    expect(Math.abs(micros / 1000 - before)).toBeLessThan(60_000)
    expect(formatLogTime(Date.UTC(2026, 10, 22, 10, 0, 0, 123) * 1000 + 456)).toBe('2026-11-22T10:00:00.123456+00:00')
    expect(formatLogLine(Date.UTC(2026, 10, 22, 10, 0, 0) * 1000 + 7, 'agent', 'web.1', 'State changed from starting to up')).toBe(
      '2026-11-22T10:00:00.000007+00:00 agent[web.1]: State changed from starting to up',
    )
    await log.close()
  })

  it('writes lines to its file in batches without waiting for close, in order, across event-loop turns', async () => {
    const dir = await logDir()
    const log = new AppLog(dir)
    for (let i = 0; i < 300; i++) {
      log.append('router', undefined, `at=info request ${i}`)
      if (i % 30 === 29) await new Promise((resolve) => setImmediate(resolve))
    }
    await vi.waitFor(async () => expect(await fileLines(join(dir, 'app.log'))).toHaveLength(300), {timeout: 5000})
    expect((await fileLines(join(dir, 'app.log'))).map(textOf)).toEqual(Array.from({length: 300}, (_, i) => `at=info request ${i}`))
    await log.close()
  })

  it('keeps lines in the order appended, with times that never go backwards', async () => {
    const log = new AppLog(await logDir())
    for (let i = 0; i < 1000; i++) log.append('app', 'web.1', `line ${i}`)
    const lines = log.recent({lines: 1000})
    expect(lines.map(textOf)).toEqual(Array.from({length: 1000}, (_, i) => `line ${i}`))
    const times = lines.map((line) => parseLogLine(line)!.time)
    for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThanOrEqual(times[i - 1]!)
    await log.close()
  })

  it('splits text and blocks into lines of the same time; bad UTF-8 becomes U+FFFD', async () => {
    const log = new AppLog(await logDir())
    log.append('app', 'web.1', 'one\ntwo\n')
    log.appendBlock('app', 'web.1', Buffer.concat([Buffer.from('three\nfo'), Buffer.from([0xff]), Buffer.from('ur\n')]))
    const lines = log.recent({lines: 10})
    expect(lines.map(textOf)).toEqual(['one', 'two', 'three', 'fo\uFFFDur'])
    expect(parseLogLine(lines[0]!)!.time).toBe(parseLogLine(lines[1]!)!.time)
    expect(parseLogLine(lines[2]!)!.time).toBe(parseLogLine(lines[3]!)!.time)
    await log.close()
  })

  it('cuts a line longer than MAX_ENTRY_BYTES into entries of at most that, as Heroku does, never inside a character', async () => {
    const dir = await logDir()
    const log = new AppLog(dir)
    log.append('app', 'web.1', 'x'.repeat(25_000))
    // One byte, then two-byte characters: a cut at MAX_ENTRY_BYTES would fall inside one.
    const wide = `a${'é'.repeat(6000)}`
    log.appendBlock('app', 'web.1', Buffer.from(`${wide}\nshort\n`))
    const texts = log.recent({lines: 100}).map(textOf)
    expect(texts.map((text) => Buffer.byteLength(text))).toEqual([10_000, 10_000, 5000, 9999, 2002, 5])
    expect(texts.slice(0, 3).join('')).toBe('x'.repeat(25_000))
    expect(texts.slice(3, 5).join('')).toBe(wide)
    expect(texts.every((text) => Buffer.byteLength(text) <= MAX_ENTRY_BYTES)).toBe(true)
    await log.close()
    expect((await fileLines(join(dir, 'app.log'))).map(textOf)).toEqual(texts)
  })

  it('keeps the last memoryLines lines in memory', async () => {
    const log = new AppLog(await logDir(), {memoryLines: 10})
    for (let i = 0; i < 25; i++) log.append('app', 'web.1', `line ${i}`)
    expect(log.recent({lines: 100}).map(textOf)).toEqual(Array.from({length: 10}, (_, i) => `line ${i + 15}`))
    expect(log.recent({lines: 3}).map(textOf)).toEqual(['line 22', 'line 23', 'line 24'])
    await log.close()
  })

  it('filters by process type, by dyno and by source', async () => {
    const log = new AppLog(await logDir())
    log.append('agent', 'worker.1', 'State changed from starting to up')
    log.append('app', 'web.1', 'web one')
    log.append('app', 'web.2', 'web two')
    log.append('app', 'webhook.1', 'webhook one')
    log.append('agent', 'web.1', 'State changed from starting to up')
    log.append('agent', 'api', 'Release v5 created by ann')
    log.append('router', undefined, 'at=info method=GET')
    const texts = (filter: Parameters<AppLog['recent']>[0]) => log.recent(filter).map((line) => LINE.exec(line)!.slice(2, 5).join(' '))
    expect(texts({lines: 100, ps: 'web'})).toEqual(['app web.1 web one', 'app web.2 web two', 'agent web.1 State changed from starting to up'])
    expect(texts({lines: 100, ps: 'web.1'})).toEqual(['app web.1 web one', 'agent web.1 State changed from starting to up'])
    expect(texts({lines: 100, ps: 'web', source: 'app'})).toEqual(['app web.1 web one', 'app web.2 web two'])
    expect(texts({lines: 100, source: 'agent'})).toEqual([
      'agent worker.1 State changed from starting to up',
      'agent web.1 State changed from starting to up',
      'agent api Release v5 created by ann',
    ])
    expect(texts({lines: 100, source: 'router'})).toEqual(['router  at=info method=GET'])
    // `lines` counts the lines that pass the filter, however old.
    expect(texts({lines: 1, ps: 'worker'})).toEqual(['agent worker.1 State changed from starting to up'])
    await log.close()
  })

  it('rotates app.log before it would pass fileBytes, keeping `files` files of mode 0600', async () => {
    const dir = await logDir()
    const log = new AppLog(dir, {fileBytes: 200, files: 3})
    for (let i = 0; i < 40; i++) log.append('app', 'web.1', `line ${String(i).padStart(2, '0')} xxxxxxxxxx`)
    await log.close()
    expect((await stat(dir)).mode & 0o777).toBe(0o700)
    expect((await readdir(dir)).sort()).toEqual(['app.log', 'app.log.1', 'app.log.2'])
    const kept: string[] = []
    for (const name of ['app.log.2', 'app.log.1', 'app.log']) {
      const info = await stat(join(dir, name))
      expect(info.size).toBeLessThanOrEqual(200)
      expect(info.mode & 0o777).toBe(0o600)
      kept.push(...(await fileLines(join(dir, name))))
    }
    // Whole lines, oldest file first, ending with the newest line: nothing cut, nothing out of order.
    const numbers = kept.map((line) => Number(/line (\d+)/.exec(textOf(line))![1]))
    expect(numbers.at(-1)).toBe(39)
    expect(numbers).toEqual(Array.from({length: numbers.length}, (_, i) => 40 - numbers.length + i))
    expect(numbers.length).toBeGreaterThanOrEqual(6)
  })

  it('reloads the newest lines from its files when made again on the same directory', async () => {
    const dir = await logDir()
    const first = new AppLog(dir, {fileBytes: 500})
    for (let i = 0; i < 30; i++) first.append(i % 2 ? 'agent' : 'app', 'web.1', `line ${i}`)
    first.append('router', undefined, 'at=info method=GET')
    const written = first.recent({lines: 20})
    await first.close()
    expect((await readdir(dir)).length).toBeGreaterThan(1)

    const again = new AppLog(dir, {memoryLines: 20, fileBytes: 500})
    expect(again.recent({lines: 100})).toEqual(written)
    expect(again.recent({lines: 100, source: 'router'})).toEqual(written.slice(-1))
    again.append('app', 'web.1', 'after the restart')
    expect(again.recent({lines: 2})).toEqual([written.at(-1), expect.stringMatching(/ app\[web\.1\]: after the restart$/)])
    await again.close()
  })

  it('does not run a line cut short by a crash into the next one', async () => {
    const dir = await logDir()
    await mkdir(dir, {recursive: true})
    const whole = formatLogLine(Date.UTC(2026, 10, 22, 10) * 1000, 'app', 'web.1', 'whole')
    const cut = formatLogLine(Date.UTC(2026, 10, 22, 10) * 1000 + 1, 'app', 'web.1', 'cut sh')
    await writeFile(join(dir, 'app.log'), `${whole}\n${cut}`, {mode: 0o600})
    const log = new AppLog(dir)
    expect(log.recent({lines: 10})).toEqual([whole, cut])
    log.append('app', 'web.1', 'next')
    await log.close()
    const lines = await fileLines(join(dir, 'app.log'))
    expect(lines.slice(0, 2)).toEqual([whole, cut])
    expect(lines.slice(2).map(textOf)).toEqual(['next'])
  })

  it('drops lines the disk cannot take in time, and says how many in the files (L12)', async () => {
    const dir = await logDir()
    const log = new AppLog(dir, {writeQueueBytes: 1000})
    for (let i = 0; i < 100; i++) log.append('app', 'web.1', `line ${i}`)
    // Memory keeps every line, whatever the disk does.
    expect(log.recent({lines: 200})).toHaveLength(100)
    await log.close()
    const lines = await fileLines(join(dir, 'app.log'))
    const notice = /^Error L12 \(Local buffer overflow\) -> The log files missed (\d+) messages/.exec(textOf(lines.at(-1)!))
    expect(lines.at(-1)).toContain(' agent[log]: ')
    expect(lines.length - 1 + Number(notice![1])).toBe(100)
    expect(lines.slice(0, -1).map(textOf)).toEqual(Array.from({length: lines.length - 1}, (_, i) => `line ${i}`))
  })

  it('keeps working in memory when the files cannot be written, and says so once', async () => {
    const dir = await logDir()
    // A directory where app.log should be: every open of it fails.
    await mkdir(join(dir, 'app.log'), {recursive: true})
    const said = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      const log = new AppLog(dir)
      log.append('app', 'web.1', 'one')
      await new Promise((resolve) => setImmediate(resolve))
      log.append('app', 'web.1', 'two')
      await log.close()
      expect(log.recent({lines: 10}).map(textOf)).toEqual(['one', 'two'])
      expect(said).toHaveBeenCalledTimes(1)
      expect(String(said.mock.calls[0]![0])).toContain(dir)
    } finally {
      said.mockRestore()
    }
  })

  it('sends live lines that pass the filter to a subscriber until it unsubscribes', async () => {
    const log = new AppLog(await logDir())
    log.append('app', 'web.1', 'before')
    const out = new PassThrough()
    let received = ''
    out.on('data', (chunk: Buffer) => (received += chunk.toString()))
    const unsubscribe = log.subscribe({ps: 'web'}, out)
    log.append('app', 'web.1', 'live one')
    log.append('app', 'worker.1', 'not for this reader')
    log.append('agent', 'web.2', 'live two')
    unsubscribe()
    log.append('app', 'web.1', 'after unsubscribing')
    await new Promise((resolve) => setImmediate(resolve))
    expect(received.split('\n').slice(0, -1).map(textOf)).toEqual(['live one', 'live two'])
    expect(log.liveTails).toBe(0)
    await log.close()
  })

  it('unsubscribes a reader whose stream closes, and ends live readers on close', async () => {
    const log = new AppLog(await logDir())
    const gone = new PassThrough()
    log.subscribe({}, gone)
    const staying = new PassThrough()
    log.subscribe({}, staying)
    expect(log.liveTails).toBe(2)
    gone.destroy()
    await once(gone, 'close')
    expect(log.liveTails).toBe(1)
    log.append('app', 'web.1', 'still logged')
    expect(log.recent({lines: 1}).map(textOf)).toEqual(['still logged'])
    staying.resume()
    const ended = once(staying, 'end')
    await log.close()
    await ended
    expect(log.liveTails).toBe(0)
  })

  it('drops lines for a slow reader instead of blocking, and tells it how many once it catches up (L11)', async () => {
    const log = new AppLog(await logDir())
    const reader = slowReader()
    log.subscribe({}, reader.out)
    for (let i = 0; i < 3000; i++) log.append('app', 'web.1', `line ${i}`)
    // The appends all returned while the reader took nothing after its first line.
    expect(reader.received).toHaveLength(1)
    expect(log.recent({lines: 1}).map(textOf)).toEqual(['line 2999'])

    reader.release()
    await vi.waitFor(() => expect(reader.received.join('')).toContain('L11'))
    log.append('app', 'web.1', 'after catching up')
    await vi.waitFor(() => expect(reader.received.join('')).toContain('after catching up'))
    const lines = reader.received.join('').split('\n').slice(0, -1)
    // The first line, the 1,000 queued, the notice where the gap is, then new lines.
    expect(lines.slice(0, 1001).map(textOf)).toEqual(Array.from({length: 1001}, (_, i) => `line ${i}`))
    expect(lines[1001]).toMatch(/^\S+ agent\[log\]: Error L11 \(Tail buffer overflow\) -> This tail session dropped 1999 messages$/)
    expect(lines.slice(1002).map(textOf)).toEqual(['after catching up'])
    const times = lines.map((line) => parseLogLine(line)!.time)
    for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThanOrEqual(times[i - 1]!)
    await log.close()
  })
})

describe('logRoutes (GET /apps/:app/log on a real socket)', () => {
  const servers: Server[] = []
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })

  /** Serves the log routes of app `shop` on a Unix socket with a dispatcher as small as can be. */
  async function serve(log: AppLog): Promise<string> {
    const socket = join(await tempApp(), 'agent.sock')
    const routes = logRoutes(async (app) => {
      if (app !== 'shop') throw new AppError(404, `no app ${app}`)
      return log
    })
    const server = createServer((req, res) => {
      const url = new URL(req.url!, 'http://agent')
      const route = routes.find(([method, pattern]) => method === req.method && pattern.test(url.pathname))
      if (!route) return void res.writeHead(404).end()
      const params = route[1].exec(url.pathname)!.slice(1).map(decodeURIComponent)
      route[2]({req, res, body: async () => ({}), user: 'ann', params, query: url.searchParams}).catch((error: AppError) => res.writeHead(error.status).end(error.message))
    })
    servers.push(server)
    await new Promise<void>((resolve) => server.listen(socket, resolve))
    return socket
  }

  function open(socket: string, path: string): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => request({socketPath: socket, path}, resolve).on('error', reject).end())
  }

  async function get(socket: string, path: string): Promise<{status: number; type?: string; text: string}> {
    const res = await open(socket, path)
    let text = ''
    for await (const chunk of res) text += String(chunk)
    return {status: res.statusCode!, type: res.headers['content-type'], text}
  }

  async function appWithLines(): Promise<AppLog> {
    const log = new AppLog(await logDir())
    for (let i = 0; i < 150; i++) log.append('app', i % 2 ? 'web.1' : 'worker.1', `line ${i}`)
    log.append('agent', 'web.1', 'State changed from starting to up')
    log.append('router', undefined, 'at=info method=GET')
    return log
  }

  it('answers the last 100 lines as text by default, and as many as asked', async () => {
    const log = await appWithLines()
    const socket = await serve(log)
    const all = await get(socket, '/apps/shop/log')
    expect(all.status).toBe(200)
    expect(all.type).toBe('text/plain; charset=utf-8')
    expect(all.text).toBe(`${log.recent({lines: 100}).join('\n')}\n`)
    expect(all.text.split('\n')).toHaveLength(101)
    const three = await get(socket, '/apps/shop/log?lines=3')
    expect(three.text.split('\n').slice(0, -1).map(textOf)).toEqual(['line 149', 'State changed from starting to up', 'at=info method=GET'])
    await log.close()
  })

  it('filters by ps and source', async () => {
    const log = await appWithLines()
    const socket = await serve(log)
    const web = await get(socket, '/apps/shop/log?ps=web&lines=2')
    expect(web.text.split('\n').slice(0, -1).map(textOf)).toEqual(['line 149', 'State changed from starting to up'])
    const webApp = await get(socket, '/apps/shop/log?ps=web.1&source=app&lines=2')
    expect(webApp.text.split('\n').slice(0, -1).map(textOf)).toEqual(['line 147', 'line 149'])
    const router = await get(socket, '/apps/shop/log?source=router')
    expect(router.text.split('\n').slice(0, -1).map(textOf)).toEqual(['at=info method=GET'])
    await log.close()
  })

  it('answers 422 saying what is allowed for a bad query', async () => {
    const log = await appWithLines()
    const socket = await serve(log)
    for (const lines of ['0', '1501', 'ten', '-1', '1.5']) {
      expect(await get(socket, `/apps/shop/log?lines=${lines}`)).toMatchObject({status: 422, text: 'lines must be a whole number from 1 to 1500'})
    }
    for (const ps of ['web x', 'web.x', 'web.1.2', '../etc', '']) {
      expect(await get(socket, `/apps/shop/log?ps=${encodeURIComponent(ps)}`)).toMatchObject({status: 422, text: 'ps must be a process type like web or a dyno like web.1'})
    }
    expect(await get(socket, '/apps/shop/log?source=api')).toMatchObject({status: 422, text: 'source must be app, agent or router'})
    expect(await get(socket, '/apps/shop/log?tail=yes')).toMatchObject({status: 422, text: 'tail must be 1 or true (or 0 or false)'})
    expect((await get(socket, '/apps/other/log')).status).toBe(404)
    await log.close()
  })

  it('streams lines appended after the recent ones with tail, until the client goes away', async () => {
    const log = await appWithLines()
    const socket = await serve(log)
    const res = await open(socket, '/apps/shop/log?tail=1&lines=2&ps=web')
    expect(res.statusCode).toBe(200)
    let text = ''
    res.on('data', (chunk: Buffer) => (text += chunk.toString()))
    await vi.waitFor(() => expect(text.split('\n')).toHaveLength(3))
    expect(log.liveTails).toBe(1)
    log.append('app', 'worker.1', 'not for this tail')
    log.append('app', 'web.2', 'live line')
    await vi.waitFor(() => expect(text).toContain('live line'))
    expect(text.split('\n').slice(0, -1).map(textOf)).toEqual(['line 149', 'State changed from starting to up', 'live line'])
    res.destroy()
    await vi.waitFor(() => expect(log.liveTails).toBe(0))
    await log.close()
  })

  it('starts a tail answer at once even when no line matches yet', async () => {
    const log = await appWithLines()
    const socket = await serve(log)
    const res = await open(socket, '/apps/shop/log?tail&ps=clock')
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8')
    let text = ''
    res.on('data', (chunk: Buffer) => (text += chunk.toString()))
    log.append('app', 'clock.1', 'tick')
    await vi.waitFor(() => expect(text).toContain('tick'))
    res.destroy()
    await log.close()
  })
})
