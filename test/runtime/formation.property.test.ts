import fc from 'fast-check'
import {describe, expect, it} from 'vitest'

import {isDevError, UsageError} from '../../src/runtime/dev-error.js'
import {parseEnvFile} from '../../src/runtime/env-file.js'
import {setEnvVars} from '../../src/runtime/env-file-edit.js'
import {MAX_QUANTITY, parseFormationSpec, resolveFormation} from '../../src/runtime/formation.js'
import type {ProcessType} from '../../src/runtime/procfile.js'
import {applyScaleChanges, parseScaleChanges, type ScaleChange} from '../../src/runtime/scale-request.js'

const RUNS = {numRuns: 1000}

/**
 * Runs `parse`; a rejection must be what the CLI prints as it is, a UsageError (exit 2) of one
 * line. True when it was accepted.
 */
function acceptsOrRefusesClearly(parse: () => unknown): boolean {
  try {
    parse()
    return true
  } catch (thrown) {
    expect(thrown).toBeInstanceOf(UsageError)
    expect(isDevError(thrown)).toBe(true)
    expect((thrown as Error).message).not.toMatch(/[\n\r]/)
    expect((thrown as Error).message.length).toBeLessThan(1000)
    return false
  }
}

const typeName = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/)
const procfileTypes = fc
  .uniqueArray(typeName, {minLength: 1, maxLength: 8})
  .map((names): ProcessType[] => names.map((name, index) => ({name, command: `run ${name}`, line: index + 1})))

/** Text built from what formation and scale arguments are made of, plus anything at all. */
const specText = fc.oneof(
  fc.string({unit: 'binary', maxLength: 80}),
  fc
    .array(fc.constantFrom('web', 'worker', 'all', 'release', '__proto__', '=', '+', '-', ',', ' ', '\n', '0', '1', '7', '100', '101', '99999999999999999999', '1e3', '0x10', '-1', '\u0000', '\u001b[31m', 'é'), {maxLength: 20})
    .map((parts) => parts.join('')),
)

describe('the formation parsers never throw anything but a one-line UsageError', () => {
  it('parseFormationSpec and resolveFormation, on any spec and any list of types to start', () => {
    fc.assert(
      fc.property(procfileTypes, specText, fc.array(fc.oneof(typeName, specText), {maxLength: 3}), (types, spec, only) => {
        acceptsOrRefusesClearly(() => parseFormationSpec(spec, types))
        if (!acceptsOrRefusesClearly(() => resolveFormation(types, {spec, only}))) return
        // What it accepts is a sane formation.
        for (const entry of resolveFormation(types, {spec, only})) {
          expect(entry.quantity).toBeGreaterThan(0)
          expect(entry.quantity).toBeLessThanOrEqual(MAX_QUANTITY)
          expect(types[entry.index]).toBe(entry.type)
        }
      }),
      RUNS,
    )
  })

  it('parseScaleChanges and applyScaleChanges, on any arguments and any current formation', () => {
    const current = fc.dictionary(fc.oneof(typeName, fc.constant('__proto__')), fc.integer({min: 0, max: MAX_QUANTITY}), {maxKeys: 5})
    fc.assert(
      fc.property(fc.array(specText, {maxLength: 4}), current, (args, now) => {
        let changes: ScaleChange[] = []
        if (!acceptsOrRefusesClearly(() => (changes = parseScaleChanges(args)))) return
        if (!acceptsOrRefusesClearly(() => applyScaleChanges(new Map(Object.entries(now)), changes))) return
        const wanted = applyScaleChanges(new Map(Object.entries(now)), changes)
        // One quantity per change, each within bounds, none lost (a type named __proto__ included).
        expect(Object.keys(wanted).sort()).toEqual(changes.map((change) => change.type).sort())
        for (const quantity of Object.values(wanted)) expect(quantity >= 0 && quantity <= MAX_QUANTITY).toBe(true)
      }),
      RUNS,
    )
  })
})

describe('valid specs round-trip', () => {
  it('a formation written as NAME=COUNT (any spacing, any order) reads back as those counts', () => {
    const spec = procfileTypes.chain((types) =>
      fc.record({
        types: fc.constant(types),
        counts: fc.uniqueArray(fc.tuple(fc.constantFrom(...types.map((type) => type.name), 'all'), fc.integer({min: 0, max: MAX_QUANTITY})), {selector: ([name]) => name, maxLength: 6}),
        spaces: fc.array(fc.constantFrom('', ' ', '  ', '\t'), {minLength: 4, maxLength: 4}),
        zeros: fc.constantFrom('', '0', '00'),
      }),
    )
    fc.assert(
      fc.property(spec, ({types, counts, spaces: [a, b, c, d], zeros}) => {
        const text = counts.map(([name, count]) => `${a}${name}${b}=${c}${zeros}${count}${d}`).join(',')
        expect(parseFormationSpec(text, types)).toEqual(new Map(counts))
      }),
      RUNS,
    )
  })

  it('resolveFormation runs what the counts say: a named count, else all=N, else 1 (release only when named)', () => {
    fc.assert(
      fc.property(procfileTypes, fc.integer({min: 0, max: MAX_QUANTITY}), fc.integer({min: 1, max: MAX_QUANTITY}), (types, all, first) => {
        const spec = `all=${all},${types[0]!.name}=${first}`
        const formation = resolveFormation(types, {spec})
        for (const entry of formation) {
          const expected = entry.index === 0 ? first : all
          expect(entry.quantity).toBe(expected)
        }
        const started = types.filter((type, index) => index === 0 || (type.name !== 'release' && all > 0))
        expect(formation.map((entry) => entry.type)).toEqual(started)
      }),
      RUNS,
    )
  })

  it('scale changes written as TYPE=N, TYPE+N, TYPE-N (spread over arguments and commas) read back', () => {
    const changes = fc.uniqueArray(
      fc.record({type: fc.oneof(typeName, fc.constant('__proto__')), op: fc.constantFrom('=' as const, '+' as const, '-' as const), count: fc.integer({min: 0, max: MAX_QUANTITY})}),
      {selector: (change) => change.type, minLength: 1, maxLength: 6},
    )
    fc.assert(
      fc.property(changes, fc.integer({min: 1, max: 3}), (list, perArg) => {
        const words = list.map(({type, op, count}) => `${type}${op}${count}`)
        const args: string[] = []
        for (let i = 0; i < words.length; i += perArg) args.push(words.slice(i, i + perArg).join(','))
        expect(parseScaleChanges(args)).toEqual(list)
      }),
      RUNS,
    )
  })
})

describe('setEnvVars writes values that parseEnvFile reads back exactly', () => {
  const key = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,10}$/)
  /** Any text a process environment can hold (no NUL), with the characters quoting cares about. */
  const value = fc
    .oneof(
      fc.string({unit: 'grapheme', maxLength: 30}),
      fc.array(fc.constantFrom("'", '"', '\\', '$', '${A}', '$B', '\n', '\r', '\r\n', '\t', ' ', '#', ' #', '=', '`', 'é', '😀', 'x'), {maxLength: 12}).map((parts) => parts.join('')),
    )
    .filter((text) => !text.includes('\0'))
  /** An existing env file: assignments in every style, comments and blank lines. */
  const existing = fc
    .array(
      fc.oneof(
        fc.tuple(key, fc.stringMatching(/^[A-Za-z0-9_./:@-]{0,10}$/)).map(([k, v]) => `${k}=${v}`),
        fc.tuple(key, fc.stringMatching(/^[A-Za-z0-9 _#$"-]{0,10}$/)).map(([k, v]) => `export ${k}='${v}'  # note`),
        fc.tuple(key, fc.stringMatching(/^[A-Za-z0-9 _#'-]{0,10}$/)).map(([k, v]) => `${k} = "${v}"`),
        fc.constantFrom('', '# a comment', '   '),
      ),
      {maxLength: 8},
    )
    .map((lines) => lines.join('\n'))
    .filter((text) => {
      try {
        parseEnvFile(text, '.env')
        return true
      } catch {
        return false
      }
    })

  it('each key set reads back as its value; every other key keeps its value', () => {
    fc.assert(
      fc.property(existing, fc.dictionary(key, value, {maxKeys: 5}), fc.boolean(), (text, vars, crlf) => {
        const before = new Map(parseEnvFile(text, '.env').map((entry) => [entry.key, entry.value]))
        const out = setEnvVars(crlf ? text.replaceAll('\n', '\r\n') : text, vars)
        const after = new Map(parseEnvFile(out, '.env').map((entry) => [entry.key, entry.value]))
        for (const [k, v] of Object.entries(vars)) expect(after.get(k)).toBe(v)
        for (const [k, v] of before) if (!Object.hasOwn(vars, k)) expect(after.get(k)).toBe(v)
        expect([...after.keys()].sort()).toEqual([...new Set([...before.keys(), ...Object.keys(vars)])].sort())
        // Setting the same values again changes nothing.
        expect(setEnvVars(out, vars)).toBe(out)
      }),
      RUNS,
    )
  })
})
