import {dirname} from 'node:path'

import {execa} from 'execa'

/**
 * Which of `paths` git tracks. Paths outside a git work tree, or a machine without git, count as
 * untracked: the question is only asked to warn about secrets in source control.
 */
export async function gitTrackedPaths(paths: readonly string[]): Promise<Set<string>> {
  const tracked = new Set<string>()
  for (const path of paths) {
    const result = await execa('git', ['ls-files', '--error-unmatch', '--', path], {
      cwd: dirname(path),
      reject: false,
      stdin: 'ignore',
      env: {GIT_OPTIONAL_LOCKS: '0'},
    })
    if (result.exitCode === 0) tracked.add(path)
  }
  return tracked
}
