#!/usr/bin/env node
// Bundles the host agent into one file, dist/agent.cjs: no native modules, run by the host's node.
import {readFileSync} from 'node:fs'

import {build} from 'esbuild'

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
await build({
  entryPoints: [new URL('../src/agent/main.ts', import.meta.url).pathname],
  outfile: new URL('../dist/agent.cjs', import.meta.url).pathname,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  define: {AGENT_VERSION: JSON.stringify(pkg.version)},
  logLevel: 'warning',
})
