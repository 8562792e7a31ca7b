// Lists over the API's connections (keyset cursors: a page is reached from the one
// before it). The desktop pages a table with el-pagination (previous/next, the total);
// the phone appends page after page to a van-list with pull-to-refresh.
import { computed, reactive, ref, watch, type Ref } from 'vue'

export interface Connection<T> {
  edges: { node: T }[]
  pageInfo: { hasNextPage: boolean; endCursor: string | null }
  totalCount: number
}

export function nodes<T>(connection: Connection<T> | null | undefined): T[] {
  return connection?.edges.map((edge) => edge.node) ?? []
}

type Fetch<T> = (after: string | null) => Promise<Connection<T>>

/** A desktop table page by page: `page` 1-based; cursors kept for the pages seen. */
export function useCursorPages<T>(fetch: Fetch<T>) {
  const rows = ref([]) as Ref<T[]>
  const total = ref(0)
  const page = ref(1)
  const loading = ref(false)
  const failure = ref<string | null>(null)
  // cursors[n] is the `after` that reaches page n + 1.
  let cursors: (string | null)[] = [null]

  async function show(target: number): Promise<void> {
    loading.value = true
    failure.value = null
    try {
      const connection = await fetch(cursors[target - 1] ?? null)
      rows.value = nodes(connection)
      total.value = connection.totalCount
      page.value = target
      cursors = cursors.slice(0, target)
      if (connection.pageInfo.hasNextPage) cursors.push(connection.pageInfo.endCursor)
    } catch (error) {
      failure.value = error instanceof Error ? error.message : String(error)
    } finally {
      loading.value = false
    }
  }

  /** From the first page again (after a filter changed or a write). */
  function reload(): Promise<void> {
    cursors = [null]
    return show(1)
  }

  /** el-pagination's current-change (prev/next): a page is reachable once the one before it was shown. */
  function change(target: number): Promise<void> {
    return show(target <= cursors.length ? target : page.value)
  }

  return reactive({ rows, total, page, loading, failure, reload, change, refresh: () => show(page.value) })
}

/** A phone list: van-list's load appends the next page, pull-to-refresh starts over. */
export function usePhoneList<T>(fetch: Fetch<T>) {
  const items = ref([]) as Ref<T[]>
  const total = ref(0)
  const loading = ref(false)
  const finished = ref(false)
  const refreshing = ref(false)
  const failed = ref(false)
  let after: string | null = null
  // A refresh (pulled, or a live event) while a page is on its way starts a new
  // generation: the older answer is dropped, not appended twice.
  let generation = 0

  async function load(): Promise<void> {
    const mine = generation
    loading.value = true
    failed.value = false
    try {
      const connection = await fetch(after)
      if (mine !== generation) return
      items.value = [...items.value, ...nodes(connection)]
      total.value = connection.totalCount
      after = connection.pageInfo.endCursor
      finished.value = !connection.pageInfo.hasNextPage
    } catch {
      if (mine === generation) failed.value = true
    } finally {
      if (mine === generation) {
        loading.value = false
        refreshing.value = false
      }
    }
  }

  function refresh(): Promise<void> {
    generation += 1
    after = null
    items.value = []
    finished.value = false
    return load()
  }

  const empty = computed(() => finished.value && items.value.length === 0)
  return reactive({ items, total, loading, finished, refreshing, failed, empty, load, refresh })
}

/** A desktop table over a list the API gives whole (agreements, joint cases): paged here. */
export function useArrayPages<T>(source: () => T[], pageSize = 10) {
  const page = ref(1)
  const total = computed(() => source().length)
  const rows = computed(() => source().slice((page.value - 1) * pageSize, page.value * pageSize))
  // A filter that shortens the list brings the reader back to a page that has rows.
  watch(total, (count) => {
    if ((page.value - 1) * pageSize >= count) page.value = 1
  })
  return reactive({ page, total, rows, pageSize })
}
