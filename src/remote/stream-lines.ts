import type {Readable} from 'node:stream'
import {StringDecoder} from 'node:string_decoder'

/** The lines of a streamed answer, as they come (a UTF-8 character cut between chunks stays whole). */
export async function* streamLines(stream: Readable): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8')
  let rest = ''
  for await (const chunk of stream) {
    rest += decoder.write(chunk as Buffer)
    let end: number
    while ((end = rest.indexOf('\n')) !== -1) {
      yield rest.slice(0, end)
      rest = rest.slice(end + 1)
    }
  }
  rest += decoder.end()
  if (rest !== '') yield rest
}
