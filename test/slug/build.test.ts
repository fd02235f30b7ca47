import {execFileSync} from 'node:child_process'
import {chmod, cp, mkdir, readdir, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {list} from 'tar'
import {describe, expect, it} from 'vitest'

import {buildSlug} from '../../src/slug/slug-build.js'
import {processAlive} from '../support/processes.js'
import {startInApp} from '../support/start-harness.js'
import {tempApp} from '../support/temp-app.js'
import {runBin} from '../support/run-bin.js'
import {spawnBin} from '../support/spawn-bin.js'

const fixtureApp = (name: string) => fileURLToPath(new URL(`../../fixtures/${name}`, import.meta.url))

/** A copy of a fixture app in a temporary directory, with a secret .env. */
async function appCopy(name: string): Promise<string> {
  const root = await tempApp({})
  await cp(fixtureApp(name), root, {recursive: true})
  await writeFile(join(root, '.env'), 'SECRET=do-not-pack\n')
  return root
}

/** Every path under `root` but .dev/, with its size and mtime. */
async function snapshot(root: string, dir = ''): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(join(root, dir), {withFileTypes: true})) {
    const path = join(dir, entry.name)
    if (path === '.dev') continue
    const stats = await stat(join(root, path))
    out.push(`${path} ${stats.size} ${stats.mtimeMs}`)
    if (entry.isDirectory()) out.push(...(await snapshot(root, path)))
  }
  return out
}

async function entries(slug: string): Promise<string[]> {
  const paths: string[] = []
  await list({file: slug, onReadEntry: (entry) => paths.push(entry.path)})
  return paths
}

describe('buildSlug with a custom buildpack (app.json)', () => {
  it('runs detect, compile (with ENV_DIR and a kept cache) and release, and packs the result', async () => {
    const root = await appCopy('buildpack-app')
    await writeFile(join(root, 'build.env'), 'GREETING=hello from the build\n')
    const lines: string[] = []
    const first = await buildSlug({root, secrets: [join(root, '.env')], buildEnvFile: join(root, 'build.env')}, (line) => lines.push(line))
    expect(first.buildpacks).toEqual(['buildpack'])
    expect(lines).toContain('-----> build number 1')
    // The Procfile wins over default_process_types; types it lacks come from the buildpack.
    expect(first.process_types).toEqual({web: 'sh web.sh', worker: 'echo "worker from the buildpack"'})
    const slug = join(root, '.dev', 'slugs', `${first.sha256}.tgz`)
    const paths = await entries(slug)
    expect(paths).toEqual(expect.arrayContaining(['Procfile', 'web.sh', 'built.txt', '.profile.d/hello.sh']))
    expect(paths.filter((path) => path === '.env' || path.startsWith('notes') || path.startsWith('.dev') || path.includes('GREETING'))).toEqual([])

    const second = await buildSlug({root, secrets: [join(root, '.env')], buildEnvFile: join(root, 'build.env')}, (line) => lines.push(line))
    expect(lines).toContain('-----> build number 2')
    expect(second.sha256).toBe(first.sha256)
  })

  it('names the buildpack and step, shows the last output, and writes no slug when compile fails', async () => {
    const root = await appCopy('buildpack-app')
    await writeFile(join(root, 'buildpack', 'bin', 'compile'), '#!/bin/sh\necho "step one"\necho "no compiler here" >&2\nexit 7\n', {mode: 0o755})
    await expect(buildSlug({root, secrets: []})).rejects.toThrow('buildpack buildpack failed in bin/compile (exit 7); its last output:\nstep one\nno compiler here')
    expect(await readdir(join(root, '.dev', 'slugs')).catch(() => [])).toEqual([])
  })

  it('says so when no buildpack in app.json applies', async () => {
    const root = await appCopy('buildpack-app')
    await writeFile(join(root, 'buildpack', 'bin', 'detect'), '#!/bin/sh\necho "no web.sh here"\nexit 1\n', {mode: 0o755})
    await expect(buildSlug({root, secrets: []})).rejects.toThrow(
      'buildpack buildpack failed in bin/detect (it does not apply to this app, though app.json names it); its last output:\nno web.sh here',
    )
  })

  it('refuses an app.json buildpack without an executable bin/detect, in one line', async () => {
    const root = await appCopy('buildpack-app')
    await chmod(join(root, 'buildpack', 'bin', 'detect'), 0o644)
    await expect(buildSlug({root, secrets: []})).rejects.toThrow(/^app\.json: buildpack \.\/buildpack has no executable bin\/detect \(looked in .*\)$/)
  })

  it('runs several app.json buildpacks in order, on the same build directory', async () => {
    const root = await appCopy('buildpack-app')
    await mkdir(join(root, 'second', 'bin'), {recursive: true})
    await writeFile(join(root, 'second', 'bin', 'detect'), '#!/bin/sh\necho second\n', {mode: 0o755})
    await writeFile(join(root, 'second', 'bin', 'compile'), '#!/bin/sh\necho "second sees: $(cat "$1/built.txt")"\n', {mode: 0o755})
    await writeFile(join(root, 'app.json'), JSON.stringify({buildpacks: ['./buildpack', {url: './second'}]}))
    const lines: string[] = []
    const manifest = await buildSlug({root, secrets: []}, (line) => lines.push(line))
    expect(manifest.buildpacks).toEqual(['buildpack', 'second'])
    expect(lines).toEqual(['-----> build number 1', 'second sees: none'])
  })

  it('gives buildpacks ENV_DIR files readable by their owner only, and never packs the --build-env file', async () => {
    const root = await appCopy('buildpack-app')
    await writeFile(join(root, 'build.env'), 'API_TOKEN=s3cret\n')
    await writeFile(join(root, 'buildpack', 'bin', 'compile'), '#!/bin/sh\nstat -c "%a %n" "$3"/* | sed "s|.*/||;s|^|mode |"\nstat -c "mode %a" "$3"/API_TOKEN\n', {mode: 0o755})
    const lines: string[] = []
    const manifest = await buildSlug({root, secrets: [], buildEnvFile: join(root, 'build.env')}, (line) => lines.push(line))
    expect(lines).toContain('mode 600')
    const paths = await entries(join(root, '.dev', 'slugs', `${manifest.sha256}.tgz`))
    expect(paths).not.toContain('build.env')
  })

  it('leaves out .env and every -e file together', async () => {
    const root = await appCopy('buildpack-app')
    await writeFile(join(root, '.env.production'), 'SECRET=2\n')
    const manifest = await buildSlug({root, secrets: [join(root, '.env.production')]})
    const paths = await entries(join(root, '.dev', 'slugs', `${manifest.sha256}.tgz`))
    expect(paths.filter((path) => path.startsWith('.env'))).toEqual([])
  })

  it('never writes into the working tree (only .dev/)', async () => {
    const root = await appCopy('node-web')
    const before = await snapshot(root)
    await buildSlug({root, secrets: []})
    expect(await snapshot(root)).toEqual(before)
  })

  it('records the commit, and a clean tree as not dirty', async () => {
    const root = await appCopy('buildpack-app')
    const git = (...args: string[]) => execFileSync('git', args, {cwd: root, stdio: 'ignore'})
    git('init', '-q')
    await writeFile(join(root, '.gitignore'), '.dev/\n.env\n')
    git('add', '-A')
    git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'app')
    const clean = await buildSlug({root, secrets: []})
    expect(clean.source_version).toEqual({commit: expect.stringMatching(/^[0-9a-f]{40}$/), dirty: false})
    await writeFile(join(root, 'web.sh'), 'echo changed\n')
    expect((await buildSlug({root, secrets: []})).source_version.dirty).toBe(true)
  })

  it('fails with the buildpack, the step and its output when release prints something that is not YAML', async () => {
    const root = await appCopy('buildpack-app')
    await writeFile(join(root, 'buildpack', 'bin', 'release'), '#!/bin/sh\necho "default_process_types: [unclosed"\n', {mode: 0o755})
    await expect(buildSlug({root, secrets: []})).rejects.toThrow(/^buildpack buildpack failed in bin\/release \(its output is not YAML/)
    expect(await readdir(join(root, '.dev', 'slugs')).catch(() => [])).toEqual([])
  })

  it('warns about a slug over the warning size, and still writes it', async () => {
    const root = await appCopy('buildpack-app')
    const manifest = await buildSlug({root, secrets: [], warnBytes: 10})
    expect(manifest.warnings).toEqual([expect.stringMatching(/^the slug is .* large slugs are slow to ship and start/)])
    expect(await readdir(join(root, '.dev', 'slugs'))).toContain(`${manifest.sha256}.tgz`)
  })

  it('refuses a slug over the size limit', async () => {
    const root = await appCopy('buildpack-app')
    await expect(buildSlug({root, secrets: [], maxBytes: 10})).rejects.toThrow(/^the slug is .* over the limit of/)
    expect((await readdir(join(root, '.dev', 'slugs'))).filter((name) => name.endsWith('.tgz') || name.endsWith('.json'))).toEqual([])
  })
})

describe('built-in buildpacks', () => {
  it('detects node for the sample app and packs it without the env file', async () => {
    const root = await appCopy('node-web')
    const manifest = await buildSlug({root, secrets: [join(root, '.env')]})
    expect(manifest.buildpacks).toEqual(['node'])
    expect(manifest.process_types).toEqual({web: 'node server.js --port $PORT', worker: 'node worker.js'})
    expect(manifest.stack).toMatchObject({os: 'linux', node: expect.stringMatching(/^v\d+/)})
    expect(await entries(join(root, '.dev', 'slugs', `${manifest.sha256}.tgz`))).not.toContain('.env')
  })

  it('chooses from the source set: a .slugignored package.json does not make a node app', async () => {
    const root = await tempApp({Procfile: 'web: sh web.sh\n', 'web.sh': 'echo hi\n', 'package.json': '{}\n', '.slugignore': 'package.json\n'})
    expect((await buildSlug({root, secrets: []})).buildpacks).toEqual(['none'])
  })

  it('puts a Python app in a virtualenv that .profile.d puts on PATH, the same bytes every build', async () => {
    const root = await tempApp({
      Procfile: 'web: python -c "import sys; print(sys.prefix)"\n',
      'requirements.txt': '# no third-party packages: nothing to download\n',
    })
    const manifest = await buildSlug({root, secrets: []})
    expect(manifest.buildpacks).toEqual(['python'])
    const paths = await entries(join(root, '.dev', 'slugs', `${manifest.sha256}.tgz`))
    expect(paths).toEqual(expect.arrayContaining(['.profile.d/python.sh', '.venv/pyvenv.cfg']))
    const run = await startInApp({}, {slug: manifest.id, root})
    expect(await run.status).toBe(0)
    expect(run.lines()).toContainEqual(expect.stringMatching(/^web\.1  \| \/.*\/dev-slug-[^/]+\/\.venv$/))
    expect((await buildSlug({root, secrets: []})).sha256).toBe(manifest.sha256)
  })

  it('packs an app with only a Procfile as it is (none)', async () => {
    const root = await tempApp({Procfile: 'clock: sh clock.sh\n', 'clock.sh': 'date\n'})
    const manifest = await buildSlug({root, secrets: []})
    expect(manifest.buildpacks).toEqual(['none'])
  })
})

describe('dev build and dev start --slug', () => {
  it('prints the manifest with --json', async () => {
    const root = await appCopy('buildpack-app')
    const built = runBin(['build', '-d', root, '--json'])
    expect(Object.keys(JSON.parse(built.stdout)).sort()).toEqual(['buildpacks', 'created_at', 'id', 'process_types', 'sha256', 'size', 'source_version', 'stack'])
  })

  it('removes its build-time secrets when interrupted', async () => {
    const root = await appCopy('buildpack-app')
    await writeFile(join(root, 'build.env'), 'API_TOKEN=s3cret\n')
    await writeFile(join(root, 'buildpack', 'bin', 'compile'), '#!/bin/sh\nsleep 30 &\necho "sleeping: $!"\necho "env dir: $3"\nwait\n', {mode: 0o755})
    const dev = spawnBin(['build', '-d', root, '--build-env', join(root, 'build.env')])
    await dev.waitFor(/./, 1).catch(() => {})
    for (let tries = 0; tries < 200 && !/env dir: /.test(dev.stderr()); tries++) await new Promise((resolve) => setTimeout(resolve, 50))
    const envDir = /env dir: (\S+)/.exec(dev.stderr())![1]!
    await stat(envDir)
    dev.child.kill('SIGINT')
    expect(await dev.status).toBe(130)
    await expect(stat(envDir)).rejects.toThrow()
    // The step it was running is stopped too (this one's own sleep: other tests sleep at the same time).
    const sleeper = Number(/sleeping: (\d+)/.exec(dev.stderr())![1])
    for (let tries = 0; tries < 40 && processAlive(sleeper); tries++) await new Promise((resolve) => setTimeout(resolve, 50))
    expect(processAlive(sleeper)).toBe(false)
  })

  it('builds, then runs the slug with .profile.d sourced first', async () => {
    const root = await appCopy('buildpack-app')
    await writeFile(join(root, 'build.env'), 'GREETING=from-env-dir\n')
    const built = runBin(['build', '-d', root, '--build-env', join(root, 'build.env'), '--json'])
    expect(built.status).toBe(0)
    const manifest = JSON.parse(built.stdout)
    const run = await startInApp({}, {slug: manifest.id, root, only: ['web']})
    expect(await run.status).toBe(0)
    expect(run.lines()).toContain('web.1  | built=from-env-dir profile=yes')
  })

  it('serves the sample web app from its slug', async () => {
    const root = await appCopy('node-web')
    const built = runBin(['build', '-d', root])
    expect(built.status).toBe(0)
    // Not a terminal: progress goes to stderr line by line, the result alone to stdout.
    expect(built.stderr).toMatch(/✔ Collected 4 files[\s\S]*✔ Buildpacks: node[\s\S]*Installing dependencies[\s\S]*✔ Compile[\s\S]*✔ Pack the slug/)
    expect(built.stdout).toMatch(/^slug [0-9a-f]{12} \(1\.\d KB\) built in \d+\.\ds\nprocess types: web, worker\n$/)
    const id = /^slug ([0-9a-f]{12}) /.exec(built.stdout)![1]!
    const dev = spawnBin(['start', '-d', root, '--slug', id, '-p', '47311', 'web'])
    await dev.waitFor(/listening on/)
    expect(await (await fetch('http://127.0.0.1:47311/')).json()).toMatchObject({ok: true, dyno: 'web.1'})
    dev.child.kill('SIGTERM')
    expect(await dev.status).toBe(143)
    expect(dev.stdout()).toMatch(/web\.1 +\| exited with code 0/)
  })

  it('runs a slug given by its path', async () => {
    const root = await appCopy('buildpack-app')
    const manifest = await buildSlug({root, secrets: []})
    const path = join(root, '.dev', 'slugs', `${manifest.sha256}.tgz`)
    const elsewhere = await tempApp({})
    const run = await startInApp({}, {slug: path, root: elsewhere, only: ['worker']})
    expect(await run.status).toBe(0)
    expect(run.lines()).toContain('worker.1 | worker from the buildpack')
  })

  it('refuses an unknown slug id in one line', async () => {
    const root = await tempApp({Procfile: 'web: x\n'})
    const result = runBin(['start', '-d', root, '--slug', 'abcdef1'])
    expect(result.status).toBe(1)
    expect(result.stderr).toBe(`error: no slug abcdef1 in ${root}/.dev/slugs; build one with dev build\n`)
  })
})
