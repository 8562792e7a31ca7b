// The last-seen lists (离线可看): each screen's answer is kept on the phone, and shown
// again when the network is gone, marked as stale, instead of an error.
const PREFIX = 'villagelink.h5.lastSeen.'

export interface Seen<T> {
  data: T
  /** True when this is the kept copy because the network failed. */
  stale: boolean
}

/** The network, not the API, failed: fetch threw, or the answer was no JSON (a proxy page). */
export function isOffline(error: unknown): boolean {
  return error instanceof TypeError || (error as { code?: string } | null)?.code === 'HTTP_ERROR'
}

export async function remembered<T>(key: string, load: () => Promise<T>): Promise<Seen<T>> {
  try {
    const data = await load()
    try {
      localStorage.setItem(PREFIX + key, JSON.stringify(data))
    } catch {
      // A full storage keeps the older copy; the screen still shows the fresh answer.
    }
    return { data, stale: false }
  } catch (error) {
    const kept = localStorage.getItem(PREFIX + key)
    if (kept === null || !isOffline(error)) throw error
    return { data: JSON.parse(kept) as T, stale: true }
  }
}
