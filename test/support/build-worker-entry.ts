// Runs the build worker from the TypeScript sources, as `dev-agent build-worker` runs it from the bundle.
import {runBuildWorker} from '../../src/agent/build-worker.js'

process.exitCode = await runBuildWorker(process.argv.slice(2))
