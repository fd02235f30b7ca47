import fc from 'fast-check'
import {parse as dotenvParse} from 'dotenv'
import {describe, expect, it} from 'vitest'

import {EnvFileError, parseEnvFile, scanEnvFile} from '../../src/runtime/env-file.js'
import {ProcfileError, parseProcfile, scanProcfile} from '../../src/runtime/procfile.js'

const RUNS = {numRuns: 2000}

/** Text built from the characters that matter to both grammars, so the fuzzing reaches deep paths. */
const grammarText = fc
  .array(fc.constantFrom('A', 'b', '_', '-', '.', '=', ':', ' ', '\t', '\n', '\r\n', '#', "'", '"', '\\', '$', '{', '}', '(', '`', 'export ', '\uFEFF', 'é', '\u0000'), {maxLength: 60})
  .map((parts) => parts.join(''))
const anyText = fc.oneof(fc.string({unit: 'binary', maxLength: 200}), grammarText)

/** Runs `parse` and returns what it threw, or undefined. */
function thrownBy(parse: () => unknown): unknown {
  try {
    parse()
    return undefined
  } catch (error) {
    return error
  }
}

describe('parsers never throw anything but their own error type', () => {
  it('scanProcfile never throws; parseProcfile throws only ProcfileError', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        const scan = scanProcfile(text, 'Procfile')
        const thrown = thrownBy(() => parseProcfile(text, 'Procfile'))
        expect(thrown === undefined || thrown instanceof ProcfileError).toBe(true)
        expect(thrown === undefined).toBe(scan.problems.every((p) => p.severity !== 'error'))
      }),
      RUNS,
    )
  })

  it('scanEnvFile never throws; parseEnvFile throws only EnvFileError', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        const scan = scanEnvFile(text, '.env', (name) => (name === 'b' ? 'B' : undefined))
        const thrown = thrownBy(() => parseEnvFile(text, '.env'))
        expect(thrown === undefined || thrown instanceof EnvFileError).toBe(true)
        for (const problem of scan.problems) expect(problem.line === null || problem.line >= 1).toBe(true)
      }),
      RUNS,
    )
  })
})

const key = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,12}$/)
const anyValue = fc.string({unit: 'grapheme', maxLength: 40})

describe('values survive quoting', () => {
  it('a value without a single quote round-trips through single quotes', () => {
    fc.assert(
      fc.property(key, anyValue.filter((v) => !v.includes("'")), (k, v) => {
        expect(parseEnvFile(`${k}='${v}'`, '.env')).toMatchObject([{key: k, value: v.replaceAll('\r\n', '\n')}])
      }),
      RUNS,
    )
  })

  it('any value round-trips through double quotes with \\, ", $ and newlines escaped', () => {
    const escape = (v: string) => v.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('$', '\\$').replaceAll('\n', '\\n').replaceAll('\r', '\\r')
    fc.assert(
      fc.property(key, anyValue, (k, v) => {
        expect(parseEnvFile(`export ${k} = "${escape(v)}" # note`, '.env')).toMatchObject([{key: k, value: v}])
      }),
      RUNS,
    )
  })

  it('agrees with the dotenv package on plain unquoted values', () => {
    const plain = fc.stringMatching(/^[A-Za-z0-9_\-.:/@+,]{0,30}$/)
    fc.assert(
      fc.property(key, plain, (k, v) => {
        const line = `${k}=${v}`
        expect(parseEnvFile(line, '.env')[0]!.value).toBe(dotenvParse(line)[k])
      }),
      RUNS,
    )
  })
})
