import { describe, expect, it, vi } from 'vitest'
import { useCursorPages, useCursors, usePhoneList, type Connection } from './paging'

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

describe('useCursors', () => {
  it('asks page 1 without a cursor and page 2 after the end of page 1', () => {
    const pages = useCursors(() => undefined, 10)
    expect(pages.variables.value).toEqual({ first: 10, after: null })
    pages.received({ hasNextPage: true, endCursor: 'c10' })
    expect(pages.goTo(2)).toBe(true)
    expect(pages.variables.value).toEqual({ first: 10, after: 'c10' })
  })

  it('cannot jump past the page after the furthest one seen', () => {
    const pages = useCursors(() => undefined, 10)
    pages.received({ hasNextPage: true, endCursor: 'c10' })
    expect(pages.goTo(3)).toBe(false)
    expect(pages.page.value).toBe(1)
  })

  it('keeps earlier cursors when going back, and drops the next page at the end', () => {
    const pages = useCursors(() => undefined, 10)
    pages.received({ hasNextPage: true, endCursor: 'c10' })
    pages.goTo(2)
    pages.received({ hasNextPage: false, endCursor: 'c15' })
    expect(pages.reachable.value).toBe(2)
    expect(pages.goTo(1)).toBe(true)
    expect(pages.variables.value.after).toBeNull()
    expect(pages.pagerTotal(200)).toBe(20)
    pages.reset()
    expect(pages.reachable.value).toBe(1)
  })
  it('loads when el-pagination moves to a reachable page, and only then', () => {
    const load = vi.fn()
    const pages = useCursors(load, 10)
    pages.received({ hasNextPage: true, endCursor: 'c10' })
    pages.current.value = 3
    expect(load).not.toHaveBeenCalled()
    pages.current.value = 2
    expect(load).toHaveBeenCalledOnce()
    expect(pages.page.value).toBe(2)
  })
})

describe('useCursorPages', () => {
  const page = (after: string | null) => ({
    edges: [{ node: after ?? 'first' }],
    pageInfo: { hasNextPage: after === null, endCursor: after === null ? 'c1' : 'c2' },
    totalCount: 2,
  })

  it('fetches page 2 after the end of page 1, and keeps the page shown when a fetch fails', async () => {
    const asked: (string | null)[] = []
    let failing = false
    const pages = useCursorPages(async (after) => {
      asked.push(after)
      if (failing) throw new Error('网络错误')
      return page(after)
    })
    await pages.reload()
    expect(pages.rows).toEqual(['first'])
    await pages.change(2)
    expect(asked).toEqual([null, 'c1'])
    expect(pages.page).toBe(2)
    await pages.change(3)
    expect(pages.page).toBe(2)
    failing = true
    await pages.change(1)
    expect(pages.failure).toBe('网络错误')
    expect(pages.page).toBe(2)
  })

  it('shows the latest search when an older answer comes last', async () => {
    let search = 'all'
    const pages = useCursorPages(async () => {
      const asked = search
      // The unfiltered page (asked first) answers last.
      await new Promise((resolve) => setTimeout(resolve, asked === 'all' ? 30 : 5))
      return { edges: [{ node: asked }], pageInfo: { hasNextPage: false, endCursor: null }, totalCount: 1 }
    })
    const first = pages.reload()
    search = 'typed'
    await Promise.all([first, pages.reload()])
    expect(pages.rows).toEqual(['typed'])
    expect(pages.loading).toBe(false)
  })
})
