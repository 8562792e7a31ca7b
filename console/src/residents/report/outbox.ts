// A report written without a network waits on the phone (localStorage) and is sent when
// the phone is back online: nothing typed is lost. Each step done is remembered, so a
// report cut off half way is not registered twice.
import { ref } from 'vue'
import { isOffline } from '../lastSeen'
import { attachPhoto, createReport, type Report } from './send'
import { messageOf } from '@/shared/graphql'

const KEY = 'villagelink.h5.outbox'

export interface Queued {
  id: string
  report: Report
  /** Compressed photos as data: URLs. */
  photos: string[]
  /** Set once the request is registered; then only the remaining photos are sent. */
  requestId?: string
  photosSent?: number
  /** The API refused it: kept for the resident to see and correct, never resent. */
  refused?: string
}

export const outbox = ref<Queued[]>(read())

function read(): Queued[] {
  return JSON.parse(localStorage.getItem(KEY) ?? '[]') as Queued[]
}

function save(): void {
  localStorage.setItem(KEY, JSON.stringify(outbox.value))
}

export function enqueue(report: Report, photos: string[]): Queued {
  const entry: Queued = { id: `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`, report, photos }
  outbox.value = [...read(), entry]
  save()
  return entry
}

export function discard(id: string): void {
  outbox.value = read().filter((entry) => entry.id !== id)
  save()
}

function update(entry: Queued): void {
  outbox.value = read().map((other) => (other.id === entry.id ? entry : other))
  save()
}

export async function sendQueued(entry: Queued, onStep: (entry: Queued) => void): Promise<void> {
  if (!entry.requestId) {
    entry = { ...entry, requestId: await createReport(entry.report), photosSent: 0 }
    onStep(entry)
  }
  for (let n = entry.photosSent ?? 0; n < entry.photos.length; n++) {
    const photo = await (await fetch(entry.photos[n])).blob()
    await attachPhoto(entry.report.village, entry.requestId!, photo, `photo-${n + 1}.jpg`, () => undefined)
    entry = { ...entry, photosSent: n + 1 }
    onStep(entry)
  }
}

let flushing: Promise<number> | null = null

/** Sends what waits, oldest first; stops at the first network failure. How many went. */
export function flush(send: typeof sendQueued = sendQueued): Promise<number> {
  flushing ??= (async () => {
    let sent = 0
    for (const entry of read().filter((e) => !e.refused)) {
      try {
        await send(entry, update)
        discard(entry.id)
        sent++
      } catch (error) {
        if (isOffline(error)) break
        update({ ...(read().find((e) => e.id === entry.id) ?? entry), refused: messageOf(error) })
      }
    }
    return sent
  })().finally(() => (flushing = null))
  return flushing
}

export function startOutbox(): void {
  window.addEventListener('online', () => void flush())
  if (navigator.onLine) void flush()
}
