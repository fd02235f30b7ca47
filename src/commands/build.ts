import {existsSync} from 'node:fs'

import {Command, Flags} from '@oclif/core'
import {Listr, ListrLogger, ProcessOutput} from 'listr2'

import {appFileOptions, appFlags} from '../cli/app-flags.js'
import {resolveAppFiles} from '../runtime/app-files.js'
import {formatBytes} from '../runtime/format-bytes.js'
import {DevError} from '../runtime/dev-error.js'
import {DEFAULT_MAX_BYTES, DEFAULT_WARN_BYTES, SlugBuild, type SlugManifest} from '../slug/slug-build.js'

export default class Build extends Command {
  static summary = 'Build the slug: the immutable, content-addressed build of the app'
  static description = `Copies the app's files (git's tracked and untracked-but-not-ignored files, without .git, .dev, the env files
and what .slugignore lists) into a fresh directory, runs the buildpacks there (app.json's, or the first built-in
that applies: node, python, none), and packs the result into .dev/slugs/<sha256>.tgz with a manifest beside it.
The same source and build give the same bytes. Progress goes to stderr; the result to stdout.`

  static examples = [
    {description: 'Build the app in the current directory', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Build-time variables for the buildpacks (never packed)', command: '<%= config.bin %> <%= command.id %> --build-env build.env'},
    {description: 'The manifest, as JSON', command: '<%= config.bin %> <%= command.id %> -d fixtures/node-web --json'},
  ]

  static flags = {
    ...appFlags,
    'build-env': Flags.string({description: 'env file of build-time variables, given to buildpacks as ENV_DIR', helpValue: 'FILE'}),
    json: Flags.boolean({description: 'print the slug manifest as JSON on stdout'}),
    'warn-size': Flags.integer({description: 'warn when the slug is bigger than this many MB', default: DEFAULT_WARN_BYTES / 1024 ** 2, min: 1}),
    'max-size': Flags.integer({description: 'refuse a slug bigger than this many MB', default: DEFAULT_MAX_BYTES / 1024 ** 2, min: 1}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Build)
    const files = resolveAppFiles(appFileOptions(flags))
    if (!existsSync(files.root)) throw new DevError(`app root does not exist: ${files.root}; pass the app's directory with -d`)
    const started = Date.now()
    const build = await SlugBuild.create({
      root: files.root,
      secrets: files.envFiles,
      buildEnvFile: flags['build-env'],
      warnBytes: flags['warn-size'] * 1024 ** 2,
      maxBytes: flags['max-size'] * 1024 ** 2,
    })
    let manifest: SlugManifest | undefined
    // Interrupted, a build still removes its ENV_DIR (build-time secrets) and any half-written slug.
    const interrupted = (status: number) => () => void build.dispose().finally(() => process.exit(status))
    const onInt = interrupted(130)
    const onTerm = interrupted(143)
    process.once('SIGINT', onInt)
    process.once('SIGTERM', onTerm)
    try {
      const tty = process.stderr.isTTY === true
      const logger = new ListrLogger({processOutput: new ProcessOutput(process.stderr, process.stderr)})
      await new Listr(
        [
          {title: 'Collect the source', task: async (_, task) => void (task.title = `Collected ${await build.collect()} files`)},
          {title: 'Detect buildpacks', task: async (_, task) => void (task.title = `Buildpacks: ${(await build.detect()).join(', ')}`)},
          {title: 'Compile', task: async (_, task) => build.compile((line) => (task.output = line)), rendererOptions: {outputBar: 12}},
          {title: 'Pack the slug', task: async () => void (manifest = await build.pack())},
        ],
        {
          // Progress goes to stderr, so stdout carries only the result; line by line when not a terminal.
          renderer: 'default',
          fallbackRenderer: 'simple',
          fallbackRendererCondition: !tty,
          exitOnError: true,
          // dev's own handlers clean up on Ctrl-C; listr2's would exit at once.
          registerSignalListeners: false,
          // The error itself is printed once, by dev, after the task list.
          rendererOptions: {showErrorMessage: false, logger},
          fallbackRendererOptions: {logger},
        },
      ).run()
    } finally {
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
      await build.dispose()
    }
    for (const warning of build.warnings) process.stderr.write(`warning: ${warning}\n`)
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(manifest, null, 2)}\n`)
      return
    }
    const {id, size, process_types: types} = manifest!
    process.stdout.write(`slug ${id} (${formatBytes(size)}) built in ${((Date.now() - started) / 1000).toFixed(1)}s\n`)
    process.stdout.write(`process types: ${Object.keys(types).join(', ')}\n`)
  }
}

