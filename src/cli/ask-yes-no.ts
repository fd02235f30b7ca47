import {createInterface} from 'node:readline'

/** Asks a question on the terminal and resolves to the answer; undefined when there is no terminal to ask on. */
export function terminalQuestion(): ((question: string) => Promise<string>) | undefined {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return undefined
  return (question) =>
    new Promise((resolve) => {
      const rl = createInterface({input: process.stdin, output: process.stderr, terminal: true})
      rl.question(question, (answer) => {
        rl.close()
        resolve(answer.trim())
      })
    })
}

/** Asks a yes/no question on the terminal (no is the default); undefined when there is no terminal. */
export function terminalYesNo(): ((question: string) => Promise<boolean>) | undefined {
  const ask = terminalQuestion()
  return ask && (async (question) => /^y(es)?$/i.test(await ask(`${question} [y/N] `)))
}
