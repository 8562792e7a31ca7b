// Paging over the API's cursor connections with el-pagination: a page's `after` is the
// end cursor of the page before it, remembered as the reader pages forward, so the
// pager offers prev/next (never a jump to a page whose cursor nobody has seen).
import { ref } from 'vue'

export interface PageInfo {
  endCursor: string | null
  hasNextPage: boolean
}

export function useCursorPaging(pageSize = 20) {
  const page = ref(1)
  // cursors[i] is the `after` of page i + 1 (null for the first page).
  const cursors: (string | null)[] = [null]

  /** The variables for the current page. */
  function window(): { first: number; after: string | null } {
    return { first: pageSize, after: cursors[page.value - 1] ?? null }
  }

  /** Keep the cursor that leads to the next page. */
  function seen(pageInfo: PageInfo): void {
    cursors[page.value] = pageInfo.hasNextPage ? pageInfo.endCursor : null
  }

  /** Back to the first page (new filters make the old cursors meaningless). */
  function reset(): void {
    page.value = 1
    cursors.length = 1
  }

  /** Whether `target` can be shown: it is the first page or its cursor is known. */
  function reachable(target: number): boolean {
    return target === 1 || Boolean(cursors[target - 1])
  }

  return { page, pageSize, window, seen, reset, reachable }
}
