import {Flags} from '@oclif/core'

import {hostFlags} from './host-flags.js'

/** The flags of commands that act on the app on its hosts: where the app is, its name, its hosts. */
export const appHostsFlags = {
  root: Flags.string({char: 'd', description: 'app root (default: the current directory)', helpValue: 'DIR'}),
  app: Flags.string({char: 'a', description: 'the app\'s name on the hosts (default: dev.json\'s "app", app.json\'s "name", else the directory name)', helpValue: 'NAME'}),
  ...hostFlags,
}
