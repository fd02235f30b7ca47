import {Flags} from '@oclif/core'

import type {AppFileOptions} from '../runtime/app-files.js'

/** The flags every command that reads an app shares: -f/--procfile, -d/--root, -e/--env. */
export const appFlags = {
  procfile: Flags.string({char: 'f', description: 'Procfile to read (default: ROOT/Procfile)', helpValue: 'PATH'}),
  root: Flags.string({char: 'd', description: "app root: processes run here (default: the Procfile's directory)", helpValue: 'DIR'}),
  env: Flags.string({
    char: 'e',
    description: 'env file(s) to load instead of ROOT/.env; later files win (repeatable, or comma-separated)',
    helpValue: 'FILE[,FILE]',
    multiple: true,
    multipleNonGreedy: true,
  }),
}

export function appFileOptions(flags: {procfile?: string; root?: string; env?: string[]}): AppFileOptions {
  return {procfile: flags.procfile, root: flags.root, env: flags.env}
}
