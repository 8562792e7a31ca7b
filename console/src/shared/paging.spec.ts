import { describe, expect, it } from 'vitest'
import { usePhoneList, type Connection } from './paging'

function page(ids: number[], next: string | null): Connection<{ id: number }> {
  return {
    edges: ids.map((id) => ({ node: { id } })),
    pageInfo: { hasNextPage: next !== null, endCursor: next },
    totalCount: 3,
  }
}

describe('a phone list', () => {
  it('appends the next page after the last cursor', async () => {
    const asked: (string | null)[] = []
    const list = usePhoneList(async (after) => {
      asked.push(after)
      return after ? page([3], null) : page([1, 2], 'c2')
    })
    await list.load()
    await list.load()
    expect(list.items.map((item) => item.id)).toEqual([1, 2, 3])
    expect(asked).toEqual([null, 'c2'])
    expect(list.finished).toBe(true)
  })

  it('shows each record once when refreshes overlap (pulled while a live event arrives)', async () => {
    let calls = 0
    const list = usePhoneList(async () => {
      calls += 1
      // The first answer comes last.
      await new Promise((resolve) => setTimeout(resolve, calls === 1 ? 30 : 5))
      return page([1, 2], null)
    })
    await Promise.all([list.refresh(), list.refresh()])
    expect(list.items.map((item) => item.id)).toEqual([1, 2])
    expect(list.loading).toBe(false)
  })
})
