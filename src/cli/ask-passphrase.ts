import {createInterface} from 'node:readline'

/**
 * Asks for a key's passphrase on the terminal without echoing it; undefined when stdin is no
 * terminal (the SSH code then says to use ssh-agent instead).
 */
export function terminalPassphrase(): ((file: string) => Promise<string>) | undefined {
  const ask = terminalSecret()
  if (ask === undefined) return undefined
  // Several hosts connect at once: each key is asked for once, one question at a time.
  const answers = new Map<string, Promise<string>>()
  let queue: Promise<unknown> = Promise.resolve()
  return (file) => {
    let answer = answers.get(file)
    if (answer === undefined) {
      answer = queue.then(() => ask(`Enter passphrase for ${file}: `))
      queue = answer.catch(() => {})
      answers.set(file, answer)
    }
    return answer
  }
}

/** Asks for a secret on the terminal without echoing it; undefined when there is no terminal. */
export function terminalSecret(): ((prompt: string) => Promise<string>) | undefined {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return undefined
  return (prompt) =>
    new Promise((resolve) => {
      const rl = createInterface({input: process.stdin, output: process.stderr, terminal: true})
      process.stderr.write(prompt)
      // Typed characters are not shown: readline writes through this, and it writes nothing.
      ;(rl as unknown as {_writeToOutput: (text: string) => void})._writeToOutput = () => {}
      rl.question('', (answer) => {
        rl.close()
        process.stderr.write('\n')
        resolve(answer)
      })
    })
}
