import { beforeEach, describe, expect, it } from 'vitest'
import { ApiError } from '@/shared/graphql'
import { enqueue, flush, outbox, type Queued } from './outbox'

const report = { village: 'xinghua', category: 'Q2F0', description: '路灯坏了', locationText: '村口' }

describe('outbox', () => {
  beforeEach(() => {
    localStorage.clear()
    outbox.value = []
  })

  it('keeps a report through a failed network and sends it once back online', async () => {
    enqueue(report, [])
    const offline = async () => {
      throw new TypeError('Failed to fetch')
    }
    expect(await flush(offline)).toBe(0)
    expect(outbox.value).toHaveLength(1)
    expect(JSON.parse(localStorage.getItem('villagelink.h5.outbox')!)[0].report.description).toBe('路灯坏了')

    const sent: string[] = []
    expect(await flush(async (entry) => void sent.push(entry.report.description))).toBe(1)
    expect(sent).toEqual(['路灯坏了'])
    expect(outbox.value).toHaveLength(0)
  })

  it('does not register a report twice when its photos were cut off', async () => {
    enqueue(report, ['data:image/jpeg;base64,AA=='])
    let creates = 0
    const halfWay = async (entry: Queued, step: (e: Queued) => void) => {
      if (!entry.requestId) {
        creates++
        step({ ...entry, requestId: 'UmVxdWVzdDp4OjE', photosSent: 0 })
      }
      throw new TypeError('Failed to fetch')
    }
    await flush(halfWay)
    await flush(halfWay)
    expect(creates).toBe(1)
    expect(outbox.value[0].requestId).toBe('UmVxdWVzdDp4OjE')
  })

  it('keeps a refused report with the reason and does not resend it', async () => {
    enqueue(report, [])
    await flush(async () => {
      throw new ApiError('分类不存在', 'NOT_FOUND')
    })
    expect(outbox.value[0].refused).toBe('分类不存在')
    let calls = 0
    await flush(async () => void calls++)
    expect(calls).toBe(0)
  })
})
