import {request} from 'node:http'
import {join} from 'node:path'

import fc from 'fast-check'
import {describe, expect, it} from 'vitest'

import {startAgent, type AgentCallResult} from '../support/agent.js'
import {deployedShop} from './deployed-shop.js'

type Agent = Awaited<ReturnType<typeof startAgent>>

/** The endpoints that read a JSON body, on app `bare` (created, nothing deployed). */
const ENDPOINTS: [method: string, path: string][] = [
  ['PATCH', '/apps/bare/config-vars?restart=0'],
  ['POST', '/apps/bare/releases'],
  ['PATCH', '/apps/bare/formation'],
  ['POST', '/apps'],
  ['POST', '/apps/bare/dynos'],
  ['PATCH', '/apps/bare'],
  ['POST', '/apps/bare/domains'],
]

/**
 * What every answer to a bad body must be: a 2xx or a 4xx (never a 500, never a cut connection),
 * JSON, and for a refusal an id and a one-line message of reasonable length.
 */
function expectClearAnswer(result: AgentCallResult, what: string): void {
  expect(result.status, what).toBeGreaterThanOrEqual(200)
  expect(result.status, `${what}: ${result.text}`).toBeLessThan(500)
  expect(typeof result.json, `${what}: ${result.text}`).toBe('object')
  if (result.status < 400) return
  expect(result.json, what).toEqual({id: expect.any(String), message: expect.any(String)})
  const message = result.json.message as string
  expect(message.length, what).toBeGreaterThan(0)
  expect(message.length, `${what}: ${message.slice(0, 200)}`).toBeLessThan(1000)
  expect(message, what).not.toMatch(/\n/)
}

/** Sends `body` as it is (bytes or text), with no JSON encoding. */
const send = (agent: Agent, method: string, path: string, body: string | Buffer) => agent.call(method, path, typeof body === 'string' ? body : Buffer.from(body))

async function expectAlive(agent: Agent): Promise<void> {
  expect((await agent.call('GET', '/agent')).status).toBe(200)
  expect(agent.child.exitCode).toBeNull()
  expect(agent.stderr()).not.toMatch(/^\s+at /m)
}

/** JSON values shaped like what the endpoints take, with anything at all in the fields. */
const anything = fc.jsonValue({maxDepth: 3})
const shaped = fc.oneof(
  anything,
  fc.dictionary(fc.oneof(fc.string(), fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,8}$/), fc.constantFrom('__proto__', 'constructor', 'PATH', '')), fc.oneof(fc.string(), fc.constant(null), anything), {maxKeys: 4}),
  fc.record({slug: fc.oneof(fc.string(), fc.stringMatching(/^[0-9a-f]{64}$/)), source_version: fc.oneof(fc.string(), fc.constant(null)), release_phase: anything, description: fc.string()}, {requiredKeys: []}),
  fc.record({rollback: fc.oneof(fc.integer({min: -2, max: 5}), fc.double(), anything)}),
  fc.record({updates: fc.oneof(anything, fc.array(fc.record({type: fc.oneof(fc.string(), fc.constantFrom('web', 'worker', '__proto__')), quantity: fc.oneof(fc.integer({min: -1, max: 101}), fc.double(), anything)}, {requiredKeys: []}), {maxLength: 5}))}),
  fc.record({name: fc.oneof(fc.string(), fc.stringMatching(/^[a-z][a-z0-9-]{1,29}$/), anything)}),
  fc.record({command: fc.oneof(anything, fc.array(fc.string(), {maxLength: 3})), env: fc.oneof(anything, fc.dictionary(fc.string(), fc.string(), {maxKeys: 3})), attach: fc.oneof(fc.boolean(), anything)}, {requiredKeys: []}),
  fc.record({maintenance: fc.oneof(fc.boolean(), anything), request_timeout_seconds: fc.oneof(fc.double(), fc.integer(), anything), idle_timeout_seconds: fc.oneof(fc.double(), fc.integer(), anything)}, {requiredKeys: []}),
  fc.record({hostname: fc.oneof(fc.string(), fc.webUrl(), fc.domain(), anything)}),
)

/** Bytes: random, random text, JSON cut short or with a byte changed, and JSON with bad UTF-8 in a string. */
const rawBody = fc.oneof(
  fc.uint8Array({maxLength: 300}).map((bytes) => Buffer.from(bytes)),
  fc.string({unit: 'binary', maxLength: 200}),
  fc.tuple(shaped, fc.nat(), fc.integer({min: 0, max: 255})).map(([value, at, byte]) => {
    const bytes = Buffer.from(JSON.stringify(value))
    if (bytes.length === 0) return bytes
    const copy = Buffer.from(bytes)
    copy[at % copy.length] = byte
    return at % 2 === 0 ? copy : bytes.subarray(0, at % bytes.length)
  }),
  fc.uint8Array({minLength: 1, maxLength: 4}).map((bytes) => Buffer.concat([Buffer.from('{"name":"a'), Buffer.from(bytes).map((b) => b | 0x80), Buffer.from('"}')])),
)

/** Sends `runs` bodies from `bodies` to each endpoint of ENDPOINTS; each answer must be clear. */
async function fuzzEndpoints(bodies: fc.Arbitrary<string | Buffer>, runs: number): Promise<void> {
  const agent = await startAgent()
  expect((await agent.call('POST', '/apps', {name: 'bare'})).status).toBe(201)
  for (const [method, path] of ENDPOINTS) {
    await fc.assert(
      fc.asyncProperty(bodies, async (body) => {
        expectClearAnswer(await send(agent, method, path, body), `${method} ${path} ${JSON.stringify(body.toString())}`)
      }),
      {numRuns: runs},
    )
  }
  await expectAlive(agent)
}

describe('fuzzed bodies on every JSON endpoint (bundled agent, real socket)', () => {
  it('answers every generated JSON body with a clear 2xx or 4xx, and stays up', () => fuzzEndpoints(shaped.map((body) => JSON.stringify(body)), 150), 60_000)

  it('answers every generated byte body with a clear 2xx or 4xx, and stays up', () => fuzzEndpoints(rawBody, 150), 60_000)

  it('runs or refuses clearly every generated detached run on a deployed app, and stays up', async () => {
    const shop = await deployedShop()
    // Only harmless programs are run: the words after them, and the environment, are anything.
    const run = fc.record(
      {
        command: fc.tuple(fc.constantFrom('true', 'echo', 'web-not-a-program'), fc.array(fc.string({unit: 'binary', maxLength: 30}), {maxLength: 4})).map(([program, args]) => [program, ...args]),
        env: fc.dictionary(fc.oneof(fc.string({maxLength: 10}), fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,8}$/), fc.constantFrom('__proto__', 'PORT', 'DYNO')), fc.string({unit: 'binary', maxLength: 30}), {maxKeys: 3}),
        attach: fc.constantFrom(false, true, undefined),
      },
      {requiredKeys: ['command']},
    )
    let started = 0
    await fc.assert(
      fc.asyncProperty(run, async (body) => {
        const result = await shop.call('POST', '/apps/shop/dynos', body)
        expectClearAnswer(result, JSON.stringify(body))
        if (result.status === 201) started++
      }),
      {numRuns: 100},
    )
    expect(started).toBeGreaterThan(0)
    await expectAlive(shop)
    expect((await shop.call('GET', '/apps/shop/dynos')).status).toBe(200)
  }, 60_000)
})

/** The body of a request that is sent as a stream of chunks (no Content-Length), `size` bytes in all. */
function chunked(home: string, method: string, path: string, size: number): Promise<AgentCallResult> {
  return new Promise((resolve, reject) => {
    const req = request({socketPath: join(home, 'agent.sock'), method, path, headers: {'transfer-encoding': 'chunked', 'content-type': 'application/json'}}, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => (text += chunk.toString()))
      res.on('end', () => resolve(Object.defineProperty({status: res.statusCode!, json: JSON.parse(text)}, 'text', {value: text}) as AgentCallResult))
    })
    req.on('error', reject)
    const chunk = Buffer.alloc(64 * 1024, 0x20)
    let sent = 0
    const write = () => {
      while (sent < size) {
        sent += chunk.length
        if (!req.write(chunk)) return void req.once('drain', write)
      }
      req.end()
    }
    write()
  })
}

const deepArrays = (depth: number) => '['.repeat(depth) + ']'.repeat(depth)
const deepObjects = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)
const MB = 1024 * 1024

/**
 * Hostile bodies, one row each: what is sent, and the status and message it must get. Rows with
 * `deployed` run against an app with a release (web and worker dynos up); the others against app
 * `bare`, created with nothing deployed.
 */
const CORPUS: {name: string; deployed?: boolean; method: string; path: string; body: (agent: Agent) => string | Buffer | object | Promise<AgentCallResult>; status: number; message: string | RegExp}[] = [
  {name: 'JSON arrays nested 100,000 deep to PATCH config-vars', method: 'PATCH', path: '/apps/bare/config-vars', body: () => deepArrays(100_000), status: 422, message: 'invalid request body: Invalid input: expected record, received array'},
  {name: 'JSON objects nested 100,000 deep to PATCH config-vars', method: 'PATCH', path: '/apps/bare/config-vars', body: () => deepObjects(100_000), status: 422, message: 'invalid request body at a: Invalid input: expected string, received object'},
  {name: 'JSON objects nested 100,000 deep to POST releases', method: 'POST', path: '/apps/bare/releases', body: () => deepObjects(100_000), status: 422, message: /^invalid request body: give \{"slug": SHA256\} to deploy a slug/},
  {name: 'JSON nested 100,000 deep in a run\'s env', method: 'POST', path: '/apps/bare/dynos', body: () => `{"command":["true"],"attach":false,"env":{"A":${deepArrays(100_000)}}}`, status: 422, message: 'invalid request body at env.A: Invalid input: expected string, received array'},
  {name: 'JSON nested 100,000 deep under a "__proto__" key', method: 'PATCH', path: '/apps/bare/formation', body: () => `{"updates":${'['.repeat(100_000)}{"__proto__":1}${']'.repeat(100_000)}}`, status: 422, message: 'invalid request body: "__proto__" cannot be a key'},
  {name: 'a 10 MB body to PATCH config-vars', method: 'PATCH', path: '/apps/bare/config-vars', body: () => Buffer.alloc(10 * MB, 0x20), status: 413, message: 'request body over 1048576 bytes'},
  {name: 'a 10 MB chunked body to POST /apps', method: 'POST', path: '/apps', body: (agent) => chunked(agent.home, 'POST', '/apps', 10 * MB), status: 413, message: 'request body over 1048576 bytes'},
  {name: 'invalid UTF-8 bytes as the body', method: 'POST', path: '/apps', body: () => Buffer.from([0xff, 0xfe, 0x7b, 0x7d]), status: 400, message: 'request body is not valid UTF-8'},
  {name: 'invalid UTF-8 inside a JSON string (not stored as U+FFFD)', method: 'PATCH', path: '/apps/bare/config-vars', body: () => Buffer.concat([Buffer.from('{"A":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]), status: 400, message: 'request body is not valid UTF-8'},
  {name: 'a NUL byte in the body', method: 'POST', path: '/apps', body: () => '{"name":"a\0"}', status: 400, message: 'request body is not JSON'},
  {name: 'a NUL character in a config var value', method: 'PATCH', path: '/apps/bare/config-vars', body: () => ({A: 'a\0b'}), status: 422, message: 'config var A holds a NUL character, which no environment can carry'},
  {name: 'a NUL character in a config var name', method: 'PATCH', path: '/apps/bare/config-vars', body: () => ({'A\0': 'b'}), status: 422, message: /^invalid config var name "A\u0000": up to 255 letters/},
  {name: 'a config var name of 255 characters (the limit)', method: 'PATCH', path: '/apps/bare/config-vars', body: () => ({['N'.repeat(255)]: 'v'}), status: 200, message: ''},
  {name: 'a config var name of 256 characters', method: 'PATCH', path: '/apps/bare/config-vars', body: () => ({['N'.repeat(256)]: 'v'}), status: 422, message: `invalid config var name "${'N'.repeat(64)}": up to 255 letters, digits, "_", "." and "-", not starting with a digit`},
  {name: 'a config var value of 32768 bytes (the limit)', method: 'PATCH', path: '/apps/bare/config-vars', body: () => ({A: 'v'.repeat(32_768)}), status: 200, message: ''},
  {name: 'a config var value of 32769 bytes', method: 'PATCH', path: '/apps/bare/config-vars', body: () => ({A: 'v'.repeat(32_769)}), status: 422, message: 'config var A is 32769 bytes; a value may take at most 32768'},
  {name: 'config vars over 64 KiB in all', method: 'PATCH', path: '/apps/bare/config-vars', body: () => ({A: 'v'.repeat(30_000), B: 'v'.repeat(30_000), C: 'v'.repeat(30_000)}), status: 422, message: /^the config vars would take 90003 bytes; an app's config vars may take at most 65536/},
  {name: '10,000 config vars in one PATCH', method: 'PATCH', path: '/apps/bare/config-vars?restart=0', body: () => Object.fromEntries(Array.from({length: 10_000}, (_, i) => [`K${i}`, 'v'])), status: 200, message: ''},
  {name: 'a "__proto__" config var (zod would drop it silently)', method: 'PATCH', path: '/apps/bare/config-vars', body: () => '{"__proto__":"x"}', status: 422, message: 'invalid request body: "__proto__" cannot be a key'},
  {name: 'a number too big for JSON numbers', method: 'PATCH', path: '/apps/bare/formation', body: () => '{"updates":[{"type":"web","quantity":1e999}]}', status: 422, message: /^invalid request body at updates\.0\.quantity: /},
  {name: 'an app name of 1 MB', method: 'POST', path: '/apps', body: () => ({name: 'a'.repeat(MB - 100)}), status: 422, message: 'invalid request body at name: an app name is 2-30 lower-case letters, digits and dashes, starting with a letter'},
  {name: 'a hostname of 1 MB', method: 'POST', path: '/apps/bare/domains', body: () => ({hostname: 'a'.repeat(MB - 100)}), status: 422, message: /^invalid request body at hostname: Too big/},
  {name: 'a formation PATCH with 10,000 updates of unknown types', deployed: true, method: 'PATCH', path: '/apps/shop/formation', body: () => ({updates: Array.from({length: 10_000}, (_, i) => ({type: `t${i}`, quantity: 1}))}), status: 422, message: 'v1 has no process type t0; it has web, worker'},
  {name: 'a formation PATCH with 10,000 updates of one type', deployed: true, method: 'PATCH', path: '/apps/shop/formation', body: () => ({updates: Array.from({length: 10_000}, () => ({type: 'worker', quantity: 1}))}), status: 200, message: ''},
  {name: 'a formation PATCH over the most dynos of a type', deployed: true, method: 'PATCH', path: '/apps/shop/formation', body: () => ({updates: [{type: 'web', quantity: 101}]}), status: 422, message: /^invalid request body at updates\.0\.quantity: Too big/},
  {name: 'a detached run with an argument of 900 kB (too big for exec)', deployed: true, method: 'POST', path: '/apps/shop/dynos', body: () => ({command: ['echo', 'x'.repeat(900_000)], attach: false}), status: 422, message: /^cannot start run\.1: spawn E2BIG$/},
  {name: 'a detached run with a variable over 32 KiB', deployed: true, method: 'POST', path: '/apps/shop/dynos', body: () => ({command: ['true'], env: {A: 'v'.repeat(40_000)}, attach: false}), status: 422, message: 'variable A is 40000 bytes; a value may take at most 32768'},
  {name: 'a detached run with a "__proto__" variable', deployed: true, method: 'POST', path: '/apps/shop/dynos', body: () => '{"command":["true"],"attach":false,"env":{"__proto__":"x"}}', status: 422, message: 'invalid request body: "__proto__" cannot be a key'},
]

describe('a corpus of hostile bodies (bundled agent, real socket)', () => {
  it.each(CORPUS)('$name → $status', async ({deployed, method, path, body, status, message}) => {
    const agent = deployed ? await deployedShop() : await startAgent()
    if (!deployed) expect((await agent.call('POST', '/apps', {name: 'bare'})).status).toBe(201)
    const given = await body(agent)
    const result = typeof given === 'object' && 'status' in given && 'json' in given ? given : await agent.call(method, path, given)
    expectClearAnswer(result, path)
    expect(result.status, result.text.slice(0, 300)).toBe(status)
    if (status >= 400) expect(result.json.message).toEqual(typeof message === 'string' ? message : expect.stringMatching(message))
    await expectAlive(agent)
  }, 30_000)
})
