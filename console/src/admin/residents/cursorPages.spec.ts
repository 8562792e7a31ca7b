import { describe, expect, it, vi } from 'vitest'
import { useCursorPages } from './cursorPages'

describe('useCursorPages', () => {
  it('asks page 1 without a cursor and page 2 after the end of page 1', () => {
    const pages = useCursorPages(() => undefined, 10)
    expect(pages.variables.value).toEqual({ first: 10, after: null })
    pages.received({ hasNextPage: true, endCursor: 'c10' })
    expect(pages.goTo(2)).toBe(true)
    expect(pages.variables.value).toEqual({ first: 10, after: 'c10' })
  })

  it('cannot jump past the page after the furthest one seen', () => {
    const pages = useCursorPages(() => undefined, 10)
    pages.received({ hasNextPage: true, endCursor: 'c10' })
    expect(pages.goTo(3)).toBe(false)
    expect(pages.page.value).toBe(1)
  })

  it('keeps earlier cursors when going back, and drops the next page at the end', () => {
    const pages = useCursorPages(() => undefined, 10)
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
    const pages = useCursorPages(load, 10)
    pages.received({ hasNextPage: true, endCursor: 'c10' })
    pages.current.value = 3
    expect(load).not.toHaveBeenCalled()
    pages.current.value = 2
    expect(load).toHaveBeenCalledOnce()
    expect(pages.page.value).toBe(2)
  })
})
