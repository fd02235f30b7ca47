#!/usr/bin/env node
// Writes oclif.manifest.json: the commands' flags and help, so `dev` starts without loading every
// command module. Run after tsc (npm run build does both); the file is generated, never committed.
import {writeFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

import {Plugin, settings} from '@oclif/core'

settings.enableAutoTranspile = false
const root = fileURLToPath(new URL('..', import.meta.url))
const plugin = new Plugin({root, type: 'core', isRoot: true, ignoreManifest: true, errorOnManifestCreate: true})
await plugin.load()
writeFileSync(new URL('../oclif.manifest.json', import.meta.url), `${JSON.stringify(plugin.manifest, null, 2)}\n`)
console.error(`oclif.manifest.json: ${Object.keys(plugin.manifest.commands).length} commands`)
