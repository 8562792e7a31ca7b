// Paging a GraphQL connection with el-pagination: the API pages by cursor, so page n is
// asked for `after` the end cursor of page n-1. The cursors of pages already seen are
// kept, so moving back and forth (and to any page up to one past the furthest seen)
// needs no extra request; a new search or filter starts again at page 1.
import { computed, ref } from 'vue'

export interface PageInfo {
  hasNextPage: boolean
  endCursor: string | null
}

export function useCursorPages(load: () => unknown, pageSize = 20) {
  const page = ref(1)
  /** cursors[i] is the `after` of page i + 1 (page 1 has none). */
  const cursors = ref<(string | null)[]>([null])
  const hasNext = ref(false)

  /** The variables of the current page's request. */
  const variables = computed(() => ({ first: pageSize, after: cursors.value[page.value - 1] ?? null }))

  /** What the answer told about the page after this one. */
  function received(pageInfo: PageInfo): void {
    hasNext.value = pageInfo.hasNextPage
    cursors.value = cursors.value.slice(0, page.value)
    if (pageInfo.hasNextPage) cursors.value.push(pageInfo.endCursor)
  }

  /** Pages that can be reached now: those seen and the next one. */
  const reachable = computed(() => cursors.value.length)

  /** What el-pagination is told the total is: only reachable pages get a number button
   * (the whole count is shown beside it). */
  function pagerTotal(total: number): number {
    return Math.min(total, reachable.value * pageSize)
  }

  function goTo(target: number): boolean {
    if (target < 1 || target > reachable.value) return false
    page.value = target
    return true
  }

  /** For el-pagination's v-model:current-page: a reachable page is loaded, others ignored. */
  const current = computed({
    get: () => page.value,
    set: (target: number) => {
      if (goTo(target)) load()
    },
  })

  function reset(): void {
    page.value = 1
    cursors.value = [null]
    hasNext.value = false
  }

  return { page, pageSize, variables, hasNext, reachable, received, goTo, reset, pagerTotal, current }
}
