// Live updates: a GraphQL subscription over graphql-sse (the live process, its URL from
// config.json), each event handed to `onEvent`. Returns the function that ends it.
// The live process ends a stream that falls far behind (`complete`): subscribe again.
// A refusal (401/403) or a live process away is retried a few times with graphql-sse's
// backoff, not forever.
import { ref } from 'vue'
import { createClient, type Client } from 'graphql-sse'
import { accessToken } from './auth'
import { consoleConfig } from './config'

let client: Promise<Client> | null = null

/** Whether the live stream is open now: a screen says 实时 only then, and 正在连接 while
 * it connects or after it broke (graphql-sse reconnects with its backoff). */
export const liveConnected = ref(false)

function liveClient(): Promise<Client> {
  client ??= consoleConfig().then((config) =>
    createClient({
      url: config.liveUrl,
      headers: async (): Promise<Record<string, string>> => {
        const token = await accessToken()
        return token ? { Authorization: `Bearer ${token}` } : {}
      },
      retryAttempts: 8,
      on: {
        connecting: () => {
          liveConnected.value = false
        },
        connected: () => {
          liveConnected.value = true
        },
      },
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
  const start = (live: Client): void => {
    if (ended) return
    dispose = live.subscribe<T>(
      { query: document, variables },
      {
        next: (result) => result.data && onEvent(result.data as T),
        error: (error) => console.warn('live:', error),
        complete: () => start(live),
      },
    )
  }
  void liveClient().then(start)
  return () => {
    ended = true
    dispose?.()
  }
}
