import {readFile, stat} from 'node:fs/promises'
import {join} from 'node:path'

/** The router's own answers, with Heroku's codes: what the log line says and what the client gets. */
export const ROUTER_ERRORS = {
  H10: {desc: 'App crashed', level: 'error'},
  H12: {desc: 'Request timeout', level: 'error'},
  H13: {desc: 'Connection closed without response', level: 'error'},
  H14: {desc: 'No web processes running', level: 'error'},
  H15: {desc: 'Idle connection', level: 'error'},
  H17: {desc: 'Poorly formatted HTTP response', level: 'error'},
  H18: {desc: 'Server Request Interrupted', level: 'error'},
  H19: {desc: 'Backend connection timeout', level: 'error'},
  H20: {desc: 'App boot timeout', level: 'error'},
  H21: {desc: 'Backend connection refused', level: 'error'},
  H27: {desc: 'Client Request Interrupted', level: 'info'},
  H28: {desc: 'Client Connection Idle', level: 'error'},
  H80: {desc: 'Maintenance mode', level: 'info'},
  H99: {desc: 'Platform error', level: 'error'},
} as const

export type RouterCode = keyof typeof ROUTER_ERRORS

const DEFAULT_ERROR_PAGE = page('Application error', 'An error occurred in the application and your page could not be served. Please try again in a few moments.')
const DEFAULT_MAINTENANCE_PAGE = page('Offline for maintenance', 'This application is undergoing maintenance right now. Please check back later.')
/** What a client gets when the router itself failed on its request (H99): the plain page, no app's own (reading it may be the fault). */
export const PLATFORM_ERROR_PAGE = DEFAULT_ERROR_PAGE
/** What a Host no app answers to gets: nothing about the host or its apps. */
export const NO_SUCH_APP_PAGE = page('No such app', 'There is no app configured at that hostname.')

function page(title: string, text: string): string {
  return `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1><p>${text}</p></body></html>\n`
}

/** Pages the app ships at the root of its slug, read at most every few seconds per path. */
const appPages = new Map<string, {at: number; page: Promise<string | undefined>}>()
/** A page edited while `dev start --router` runs is served within this long. */
const PAGE_CACHE_MS = 2000

async function readPage(path: string): Promise<string | undefined> {
  try {
    // A page is small: anything big (or not a file) is ignored rather than read into memory.
    const info = await stat(path)
    if (!info.isFile() || info.size > 512 * 1024) return undefined
    return await readFile(path, 'utf8')
  } catch {
    return undefined
  }
}

/**
 * The body of a router error page: the app's `maintenance.html` (H80) or `error.html` (every other
 * code) from the root of its release, else a plain default.
 */
export async function errorPage(code: RouterCode, releaseDir: string | undefined): Promise<string> {
  const name = code === 'H80' ? 'maintenance.html' : 'error.html'
  if (releaseDir !== undefined) {
    const path = join(releaseDir, name)
    let cached = appPages.get(path)
    if (cached === undefined || Date.now() - cached.at > PAGE_CACHE_MS) {
      appPages.delete(path)
      cached = {at: Date.now(), page: readPage(path)}
      appPages.set(path, cached)
      // Release directories are few; the oldest go first when an agent has run for long.
      if (appPages.size > 64) appPages.delete(appPages.keys().next().value!)
    }
    const own = await cached.page
    if (own !== undefined) return own
  }
  return code === 'H80' ? DEFAULT_MAINTENANCE_PAGE : DEFAULT_ERROR_PAGE
}
