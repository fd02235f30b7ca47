import {Flags} from '@oclif/core'

import type {TargetOptions} from '../remote/app-targets.js'
import {terminalPassphrase} from './ask-passphrase.js'
import {appHostsFlags} from './app-hosts-flags.js'

/** The flags of commands that act on the app's hosts, or on a local `dev start`. */
export const localOrHostsFlags = {
  ...appHostsFlags,
  local: Flags.boolean({description: 'act on the `dev start` running in the app root, even when hosts are configured', exclusive: ['host']}),
}

/** Where a command acts, from its flags. */
export function targetOptions(flags: {root?: string; app?: string; host?: string[]; local?: boolean; 'accept-new-host-key'?: boolean}, {local}: {local: boolean}): TargetOptions {
  return {
    root: flags.root ?? process.cwd(),
    hosts: flags.host,
    app: flags.app,
    connect: {acceptNewHostKey: flags['accept-new-host-key'], askPassphrase: terminalPassphrase()},
    local,
    forceLocal: flags.local,
  }
}
