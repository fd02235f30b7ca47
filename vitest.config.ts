import {defineConfig} from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Removes the temporary app directories each test file made.
    setupFiles: ['test/support/setup.ts'],
    // @oclif/test captures console output itself.
    disableConsoleIntercept: true,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
})
