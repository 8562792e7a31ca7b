// Reading a notice reports the read (the village's read count), once per notice on this
// phone; the ones read here are remembered to mark the unread ones.
import { ref } from 'vue'
import { request } from '@/shared/graphql'
import markReadDocument from './markNoticeRead.graphql?raw'

const KEY = 'villagelink.h5.readNotices'

export const readNotices = ref<Set<string>>(new Set(JSON.parse(localStorage.getItem(KEY) ?? '[]') as string[]))

export interface Notice {
  id: string
  category: string
  title: string
  body: string
  publishedAt: string | null
  readCount: number
}

/** Reports the read (the API counts a reader once) and returns the new read count. */
export async function markRead(notice: Notice, reader: string): Promise<number> {
  const data = await request<{ markNoticeRead: { notice: { readCount: number } | null } }>(markReadDocument, {
    input: { notice: notice.id, reader },
  })
  readNotices.value = new Set([...readNotices.value, notice.id])
  localStorage.setItem(KEY, JSON.stringify([...readNotices.value]))
  return data.markNoticeRead.notice?.readCount ?? notice.readCount
}
