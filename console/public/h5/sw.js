// The residents' app's service worker (scope /h5/): the app shell loads without a
// network. Pages are fetched network first and kept; the hashed build assets are kept
// as they are first loaded (their names change with their content). The API is never
// cached here: the app keeps its last-seen lists itself (src/residents/lastSeen.ts).
const CACHE = 'villagelink-h5-v1'
// The page and the settings every route starts from: kept at install, because the page
// that registers this worker was loaded before it could see (and keep) them.
const SHELL = ['/h5/', '/console/config.json']

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .catch(() => undefined) // offline at install: kept on the next visit instead
      .then(() => self.skipWaiting()),
  )
})

// The page names the build assets it loaded before this worker controlled it (its entry
// script and styles, the first screen): kept too, or the shell could not start offline.
self.addEventListener('message', (event) => {
  const assets = (event.data?.assets ?? []).filter((path) => typeof path === 'string' && path.startsWith('/assets/'))
  event.waitUntil(
    caches.open(CACHE).then((cache) =>
      Promise.all(
        assets.map(async (path) => {
          if (!(await cache.match(path))) await cache.add(path).catch(() => undefined)
        }),
      ),
    ),
  )
})
self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  )
})

async function networkFirst(request, key) {
  const cache = await caches.open(CACHE)
  try {
    const response = await fetch(request)
    if (response.ok) await cache.put(key, response.clone())
    return response
  } catch (error) {
    const kept = await cache.match(key)
    if (kept) return kept
    throw error
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(CACHE)
  const kept = await cache.match(request)
  if (kept) return kept
  const response = await fetch(request)
  if (response.ok) await cache.put(request, response.clone())
  return response
}

self.addEventListener('fetch', (event) => {
  const { request } = event
  const url = new URL(request.url)
  if (request.method !== 'GET' || url.origin !== self.location.origin) return
  if (request.mode === 'navigate' && url.pathname.startsWith('/h5/')) {
    // Every route of the app is the same page: one cached copy serves them all.
    event.respondWith(networkFirst(request, '/h5/'))
  } else if (url.pathname.startsWith('/assets/') || url.pathname === '/console/config.json') {
    event.respondWith(url.pathname.startsWith('/assets/') ? cacheFirst(request) : networkFirst(request, request))
  }
})
