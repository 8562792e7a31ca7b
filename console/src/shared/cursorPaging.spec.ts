import { describe, expect, it } from 'vitest'
import { useCursorPaging } from './cursorPaging'

describe('useCursorPaging', () => {
  it('pages forward by end cursors and back again', () => {
    const paging = useCursorPaging(10)
    expect(paging.window()).toEqual({ first: 10, after: null })
    paging.seen({ endCursor: 'c10', hasNextPage: true })
    expect(paging.reachable(2)).toBe(true)
    expect(paging.reachable(3)).toBe(false)
    paging.page.value = 2
    expect(paging.window()).toEqual({ first: 10, after: 'c10' })
    paging.seen({ endCursor: 'c20', hasNextPage: false })
    expect(paging.reachable(3)).toBe(false)
    paging.page.value = 1
    expect(paging.window().after).toBeNull()
  })

  it('forgets the cursors on reset', () => {
    const paging = useCursorPaging()
    paging.seen({ endCursor: 'c20', hasNextPage: true })
    paging.page.value = 2
    paging.reset()
    expect(paging.page.value).toBe(1)
    expect(paging.reachable(2)).toBe(false)
  })
})
