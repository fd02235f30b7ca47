import {afterAll} from 'vitest'

import {removeTempApps} from './temp-app.js'

// Registered before any test file's own hooks, so it runs after them (vitest runs after-hooks in
// reverse): the file's agents, hosts and dynos are stopped by then.
afterAll(removeTempApps)
