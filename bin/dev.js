#!/usr/bin/env node
// Runs the TypeScript sources directly, without a build.
import {register} from 'tsx/esm/api'

register()
const {runCli} = await import('../src/cli/run-cli.ts')
await runCli(import.meta.url, {development: true})
