import {readFile} from 'node:fs/promises'

import {DevError} from './dev-error.js'
import {displayPath} from './display-path.js'

/** Strips a leading UTF-8 BOM and turns CRLF line ends into LF (line numbers are unchanged). */
export function normalizeText(text: string): string {
  const withoutBom = text.charCodeAt(0) === 0xfe_ff ? text.slice(1) : text
  return withoutBom.replaceAll('\r\n', '\n')
}

/** Reads a UTF-8 text file as it is; resolves to undefined when it does not exist. */
export async function readTextFileIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    if (code === 'EISDIR') throw new DevError(`${displayPath(path)} is a directory, not a file`, {cause: error})
    if (code === 'EACCES') throw new DevError(`cannot read ${displayPath(path)}: permission denied`, {cause: error})
    throw error
  }
}
