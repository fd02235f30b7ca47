import {Flags} from '@oclif/core'

/** The flags of commands that work on hosts. */
export const hostFlags = {
  host: Flags.string({description: 'a host: an ssh config Host, or [user@]host[:port] (repeatable; default: DEV_HOST, else dev.json)', helpValue: 'HOST', multiple: true}),
  'accept-new-host-key': Flags.boolean({description: 'trust a host whose key is not in known_hosts yet, and add it there'}),
}
