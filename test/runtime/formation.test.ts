import {describe, expect, it} from 'vitest'

import {resolveFormation} from '../../src/runtime/formation.js'
import {parseProcfile} from '../../src/runtime/procfile.js'

const types = parseProcfile('web: w\nworker: k\nclock: c\nrelease: r\n', 'Procfile')
const formation = (options: Parameters<typeof resolveFormation>[1]) =>
  resolveFormation(types, options).map(({type, index, quantity}) => `${type.name}@${index}=${quantity}`)

describe('resolveFormation', () => {
  it('runs one of each type but release by default, in Procfile order', () => {
    expect(formation({})).toEqual(['web@0=1', 'worker@1=1', 'clock@2=1'])
  })

  it('sets counts with -m; unlisted types keep 1 (Foreman B2, B5)', () => {
    expect(formation({spec: 'web=2,worker=0'})).toEqual(['web@0=2', 'clock@2=1'])
    expect(formation({spec: ' web = 3 , '})).toEqual(['web@0=3', 'worker@1=1', 'clock@2=1'])
  })

  it('all=N sets every type not listed, release excepted (Foreman B4)', () => {
    expect(formation({spec: 'all=2,worker=0'})).toEqual(['web@0=2', 'clock@2=2'])
    expect(formation({spec: 'all=0,clock=1'})).toEqual(['clock@2=1'])
  })

  it('starts only named types, keeping their Procfile index (so their ports)', () => {
    expect(formation({only: ['worker']})).toEqual(['worker@1=1'])
    expect(formation({only: ['clock', 'web'], spec: 'web=2'})).toEqual(['web@0=2', 'clock@2=1'])
  })

  it('rejects a count for a type that is not started', () => {
    expect(() => formation({only: ['web'], spec: 'worker=1'})).toThrow('-m counts worker, which is not among the types to start; name it too: dev start web worker')
  })

  it('runs release only when named', () => {
    expect(formation({only: ['release']})).toEqual(['release@3=1'])
    expect(formation({spec: 'release=1'})).toEqual(['web@0=1', 'worker@1=1', 'clock@2=1', 'release@3=1'])
  })

  it('rejects an unknown type, listing the known ones (Foreman B6)', () => {
    expect(() => formation({spec: 'wbe=2'})).toThrow('unknown process type "wbe"; the Procfile defines: web, worker, clock, release')
    expect(() => formation({only: ['api']})).toThrow('unknown process type "api"; the Procfile defines: web, worker, clock, release')
    // `dev start --router 9000`: the port is read as a type; the message says how to give it.
    expect(() => formation({only: ['9000']})).toThrow('unknown process type "9000"; the Procfile defines: web, worker, clock, release (a port for --router? attach it: --router=9000)')
  })

  it('rejects negative, fractional, non-numeric and over-100 counts (Foreman B9)', () => {
    for (const spec of ['web=-1', 'web=1.5', 'web=two', 'web=', 'web=101']) {
      expect(() => formation({spec})).toThrow(/^bad count ".*" for web: use a whole number from 0 to 100/)
    }
    expect(formation({spec: 'web=100'})).toEqual(['web@0=100', 'worker@1=1', 'clock@2=1'])
  })

  it('rejects a malformed spec and an empty formation', () => {
    expect(() => formation({spec: 'web:2'})).toThrow('bad formation "web:2": write NAME=COUNT, as in web=2,worker=1')
    expect(() => formation({spec: 'all=0'})).toThrow('the formation runs no processes; give a type a count above 0, as in -m web=1')
    expect(() => resolveFormation(parseProcfile('release: x\n', 'Procfile'))).toThrow(
      'the Procfile defines only release, which runs on deploy; to run it here: dev start release',
    )
  })
})
