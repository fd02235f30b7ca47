#!/usr/bin/env node
// Bundles the host agent into one file, dist/agent.cjs: no native modules, run by the host's node.
import {readdirSync, readFileSync, statSync} from 'node:fs'
import {join, relative} from 'node:path'

import {build} from 'esbuild'

/** The built-in buildpacks travel inside the agent: a host has no copy of dev's files. */
function embeddedBuildpacks() {
  const root = new URL('../buildpacks/', import.meta.url).pathname
  const files = {}
  const walk = (dir) => {
    for (const entry of readdirSync(dir, {withFileTypes: true}).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else files[relative(root, path)] = {mode: statSync(path).mode & 0o777, text: readFileSync(path, 'utf8')}
    }
  }
  walk(root)
  return files
}

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
await build({
  entryPoints: [new URL('../src/agent/main.ts', import.meta.url).pathname],
  outfile: new URL('../dist/agent.cjs', import.meta.url).pathname,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  define: {AGENT_VERSION: JSON.stringify(pkg.version), EMBEDDED_BUILDPACKS: JSON.stringify(embeddedBuildpacks())},
  logLevel: 'warning',
})
