import {join} from 'node:path'

import {BlobStore} from './blob-store.js'

export {SHA256} from './blob-store.js'

/** Content-addressed slugs on a host: `slugs/<sha256>.tgz`, each verified against its name. */
export class SlugStore extends BlobStore {
  constructor(home: string) {
    super(join(home, 'slugs'), 'slug')
  }
}

/** Uploaded source archives, built on the host: `sources/<sha256>.tgz`, verified the same way. */
export class SourceStore extends BlobStore {
  constructor(home: string) {
    super(join(home, 'sources'), 'source')
  }
}
