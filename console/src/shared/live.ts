// Live updates: a GraphQL subscription over graphql-sse (the live process, its URL from
// config.json), each event handed to `onEvent`. Returns the function that ends it.
import { createClient, type Client } from 'graphql-sse'
import { accessToken } from './auth'
import { consoleConfig } from './config'

let client: Promise<Client> | null = null

function liveClient(): Promise<Client> {
  client ??= consoleConfig().then((config) =>
    createClient({
      url: config.liveUrl,
      headers: async (): Promise<Record<string, string>> => {
        const token = await accessToken()
        return token ? { Authorization: `Bearer ${token}` } : {}
      },
      retryAttempts: Infinity,
    }),
  )
  return client
}

export function subscribe<T>(
  document: string,
  variables: Record<string, unknown>,
  onEvent: (event: T) => void,
): () => void {
  let dispose: (() => void) | null = null
  let ended = false
  void liveClient().then((live) => {
    if (ended) return
    dispose = live.subscribe<T>(
      { query: document, variables },
      {
        next: (result) => result.data && onEvent(result.data as T),
        error: (error) => console.warn('live:', error),
        complete: () => undefined,
      },
    )
  })
  return () => {
    ended = true
    dispose?.()
  }
}
