import {execFileSync} from 'node:child_process'
import {chmod, mkdir, readdir, readFile, readlink, stat, symlink, utimes, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {gzipSync} from 'node:zlib'

import {Header, list} from 'tar'
import {describe, expect, it} from 'vitest'

import {extractSlug} from '../../src/slug/extract-slug.js'
import {packSlug} from '../../src/slug/pack-slug.js'
import {sourceSet} from '../../src/slug/source-set.js'
import {tempApp} from '../support/temp-app.js'

const APP = {
  Procfile: 'web: node server.js --port $PORT\n',
  'server.js': 'console.log("hi")\n',
  'lib/util.js': 'export {}\n',
  'bin/setup': '#!/bin/sh\necho setup\n',
  '.env': 'SECRET=1\n',
  '.env.test': 'SECRET=2\n',
  '.slugignore': 'docs/\n*.psd\n',
  'docs/guide.md': '# guide\n',
  'art/logo.psd': 'binary',
}

async function entriesOf(slug: string): Promise<{path: string; mode: number; uid: number; gid: number; mtime: number}[]> {
  const entries: {path: string; mode: number; uid: number; gid: number; mtime: number}[] = []
  await list({file: slug, onReadEntry: (entry) => entries.push({path: entry.path, mode: entry.mode!, uid: entry.uid ?? 0, gid: entry.gid ?? 0, mtime: entry.mtime?.getTime() ?? 0})})
  return entries
}

describe('sourceSet', () => {
  it('takes every file outside git, leaving out env files, .slugignore matches, .git and .dev', async () => {
    const root = await tempApp({...APP, '.dev/cache/x': 'cache', '.git/HEAD': 'ref'})
    expect(await sourceSet({root, secrets: [join(root, '.env'), join(root, '.env.test')]})).toEqual([
      '.slugignore',
      'Procfile',
      'bin/setup',
      'lib/util.js',
      'server.js',
    ])
  })

  it('in a git work tree, takes tracked and untracked files but not ignored ones', async () => {
    const root = await tempApp({...APP, '.gitignore': 'node_modules/\ntmp.log\n', 'node_modules/x/index.js': '', 'tmp.log': '', 'new.js': ''})
    execFileSync('git', ['init', '-q'], {cwd: root})
    execFileSync('git', ['add', 'Procfile', 'server.js'], {cwd: root})
    const files = await sourceSet({root, secrets: [join(root, '.env')]})
    expect(files).toContain('new.js')
    expect(files).toContain('.env.test')
    expect(files).not.toContain('.env')
    expect(files).not.toContain('tmp.log')
    expect(files.some((file) => file.startsWith('node_modules/'))).toBe(false)
  })
})

describe('packSlug', () => {
  it('gives the same bytes for the same files, whatever their times and owners', async () => {
    const a = await tempApp(APP)
    const b = await tempApp(APP)
    await utimes(join(b, 'server.js'), new Date('2020-01-01'), new Date('2020-01-01'))
    const files = await sourceSet({root: a, secrets: [join(a, '.env')]})
    const first = await packSlug(a, files, join(a, '.dev/slugs/one.tgz'))
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const second = await packSlug(b, files, join(b, '.dev/slugs/two.tgz'))
    expect(second.sha256).toBe(first.sha256)
    expect(second.size).toBe(first.size)
    expect(await readFile(second.path)).toEqual(await readFile(first.path))
  })

  it('gives another sha256 after a one-byte change', async () => {
    const root = await tempApp(APP)
    const files = await sourceSet({root, secrets: []})
    const before = await packSlug(root, files, join(root, '.dev/slugs/a.tgz'))
    await writeFile(join(root, 'server.js'), 'console.log("hI")\n')
    const after = await packSlug(root, files, join(root, '.dev/slugs/b.tgz'))
    expect(after.sha256).not.toBe(before.sha256)
  })

  it('writes sorted entries with parents first, owner 0, modes 0644/0755 and one mtime', async () => {
    const root = await tempApp(APP)
    await chmod(join(root, 'bin/setup'), 0o700)
    await chmod(join(root, 'server.js'), 0o600)
    const files = await sourceSet({root, secrets: [join(root, '.env'), join(root, '.env.test')]})
    const {path} = await packSlug(root, files, join(root, 'out.tgz'))
    const entries = await entriesOf(path)
    expect(entries.map((entry) => entry.path)).toEqual(['.slugignore', 'Procfile', 'bin/', 'bin/setup', 'lib/', 'lib/util.js', 'server.js'])
    expect(Object.fromEntries(entries.map((entry) => [entry.path, entry.mode.toString(8)]))).toEqual({
      '.slugignore': '644',
      Procfile: '644',
      'bin/': '755',
      'bin/setup': '755',
      'lib/': '755',
      'lib/util.js': '644',
      'server.js': '644',
    })
    expect(entries.every((entry) => entry.uid === 0 && entry.gid === 0)).toBe(true)
    expect(new Set(entries.filter((entry) => !entry.path.endsWith('/')).map((entry) => entry.mtime)).size).toBe(1)
    // A gzip header without a timestamp: bytes 4-7 are zero.
    expect((await readFile(path)).subarray(4, 8)).toEqual(Buffer.alloc(4))
  })

  it('refuses to pack a link that points outside the app', async () => {
    const root = await tempApp({'a.txt': 'x'})
    await symlink('/etc/hostname', join(root, 'abs'))
    await expect(packSlug(root, ['a.txt', 'abs'], join(root, 's.tgz'))).rejects.toThrow('abs is a link to /etc/hostname, outside the app')
    await symlink('../../up', join(root, 'up'))
    await expect(packSlug(root, ['a.txt', 'up'], join(root, 's.tgz'))).rejects.toThrow('up is a link to ../../up, outside the app')
  })

  it('leaves no file behind when packing fails', async () => {
    const root = await tempApp(APP)
    const out = join(root, 'slugs/x.tgz')
    await expect(packSlug(root, ['missing.js'], out)).rejects.toThrow()
    await expect(stat(out)).rejects.toThrow()
    expect(await readdir(join(root, 'slugs')).catch(() => [])).toEqual([])
  })
})

/** A gzipped tar with exactly these entries, however hostile. */
function hostileTar(entries: {path: string; type?: 'File' | 'SymbolicLink' | 'Link'; linkpath?: string; body?: string}[]): Buffer {
  const blocks: Buffer[] = []
  for (const {path, type = 'File', linkpath, body = ''} of entries) {
    const data = Buffer.from(body)
    const header = new Header({path, type, linkpath, mode: 0o644, size: type === 'File' ? data.length : 0, mtime: new Date(0)})
    const block = Buffer.alloc(512)
    header.encode(block)
    blocks.push(block)
    if (type === 'File' && data.length > 0) blocks.push(Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]))
  }
  blocks.push(Buffer.alloc(1024))
  return gzipSync(Buffer.concat(blocks))
}

describe('extractSlug', () => {
  it('extracts what packSlug packed, modes included', async () => {
    const root = await tempApp(APP)
    await chmod(join(root, 'bin/setup'), 0o755)
    const files = await sourceSet({root, secrets: [join(root, '.env')]})
    const {path} = await packSlug(root, files, join(root, '.dev/s.tgz'))
    const target = join(await tempApp({}), 'app')
    await extractSlug(path, target)
    expect(await readFile(join(target, 'server.js'), 'utf8')).toBe('console.log("hi")\n')
    expect((await stat(join(target, 'bin/setup'))).mode & 0o111).not.toBe(0)
  })

  it('keeps a symbolic link that stays inside', async () => {
    const root = await tempApp({'a.txt': 'x'})
    await symlink('a.txt', join(root, 'b'))
    const {path} = await packSlug(root, ['a.txt', 'b'], join(root, 's.tgz'))
    const target = join(await tempApp({}), 'app')
    await extractSlug(path, target)
    expect(await readlink(join(target, 'b'))).toBe('a.txt')
  })

  for (const [name, entries] of [
    ['an absolute path', [{path: '/tmp/dev-hostile-abs', body: 'x'}]],
    ['a .. component', [{path: '../escaped.txt', body: 'x'}]],
    ['a nested .. that escapes', [{path: 'a/../../escaped.txt', body: 'x'}]],
    ['a symbolic link to an absolute path', [{path: 'link', type: 'SymbolicLink', linkpath: '/etc/passwd'}]],
    ['a symbolic link that climbs out', [{path: 'link', type: 'SymbolicLink', linkpath: '../../outside'}]],
    ['a hard link to a file outside', [{path: 'hard', type: 'Link', linkpath: '../outside.txt'}]],
    [
      'a write through a link',
      [
        {path: 'dir', type: 'SymbolicLink', linkpath: 'sub'},
        {path: 'dir/escaped.txt', body: 'x'},
      ],
    ],
  ] as const) {
    it(`refuses an archive with ${name}`, async () => {
      const base = await tempApp({})
      await mkdir(join(base, 'inner'))
      const slug = join(base, 'hostile.tgz')
      await writeFile(slug, hostileTar(entries as never))
      const target = join(base, 'inner', 'app')
      await expect(extractSlug(slug, target)).rejects.toThrow(/^refused to extract .*hostile\.tgz: .*; the slug is damaged or hostile/)
      await expect(stat(join(base, 'escaped.txt'))).rejects.toThrow()
      await expect(stat(join(base, 'inner', 'escaped.txt'))).rejects.toThrow()
      await expect(stat('/tmp/dev-hostile-abs')).rejects.toThrow()
    })
  }
})
