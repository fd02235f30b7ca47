import {createServer} from 'node:net'

import {describe, expect, it} from 'vitest'

import {portFor, portInUse, resolveBasePort} from '../../src/runtime/ports.js'

describe('ports', () => {
  it('base + 100 × type index + (instance - 1) (honcho H17)', () => {
    expect([portFor(5000, 0, 1), portFor(5000, 0, 2), portFor(5000, 1, 1), portFor(4000, 1, 2)]).toEqual([5000, 5001, 5100, 4101])
  })

  it('takes --port, else the env files, else the shell, else 5000 (Foreman B7, B8)', () => {
    expect(resolveBasePort({flag: 4400, envFiles: '4300', shell: '4100'})).toBe(4400)
    expect(resolveBasePort({envFiles: '4300', shell: '4100'})).toBe(4300)
    expect(resolveBasePort({shell: '4100'})).toBe(4100)
    expect(resolveBasePort({envFiles: '', shell: ''})).toBe(5000)
  })

  it('rejects a PORT that is not a port number, saying where it came from', () => {
    expect(() => resolveBasePort({envFiles: 'abc'})).toThrow('PORT in the env files is not a port number (1-65535); fix it or pass --port')
    expect(() => resolveBasePort({shell: '70000'})).toThrow(/^PORT in the environment is not a port number/)
  })

  it('tells a port in use from a free one', async () => {
    const server = createServer().listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    const {port} = server.address() as {port: number}
    expect(await portInUse(port)).toBe(true)
    await new Promise((resolve) => server.close(resolve))
    expect(await portInUse(port)).toBe(false)
  })
})
