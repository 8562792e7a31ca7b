// Lists over the API's connections (keyset cursors: a page is reached from the one
// before it). The desktop pages a table with el-pagination (previous/next, the total);
// the phone appends page after page to a van-list with pull-to-refresh.
import { computed, reactive, ref, watch, type Ref } from 'vue'
import { messageOf } from './graphql'

export interface PageInfo {
  hasNextPage: boolean
  endCursor: string | null
}

export interface Connection<T> {
  edges: { node: T }[]
  pageInfo: PageInfo
  totalCount: number
}

export function nodes<T>(connection: Connection<T> | null | undefined): T[] {
  return connection?.edges.map((edge) => edge.node) ?? []
}

type Fetch<T> = (after: string | null) => Promise<Connection<T>>

/** A screen's load with `loading` and `failure`: `apply` gets the answer only when no
 * later call has started meanwhile, so a search typed while the page before it is still
 * on its way is not overwritten by that older answer when it comes last. */
export function useLatestLoad<A>(fetch: () => Promise<A>, apply: (answer: A) => void) {
  const loading = ref(false)
  const failure = ref<string | null>(null)
  let generation = 0

  async function load(): Promise<void> {
    const mine = ++generation
    loading.value = true
    failure.value = null
    try {
      const answer = await fetch()
      if (mine === generation) apply(answer)
    } catch (error) {
      if (mine === generation) failure.value = messageOf(error)
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  return { loading, failure, load }
}

/** A desktop table page by page from a fetch of its own: `page` 1-based, over useCursors. */
export function useCursorPages<T>(fetch: Fetch<T>) {
  const rows = ref([]) as Ref<T[]>
  const total = ref(0)
  const cursors = useCursors(() => show())
  const latest = useLatestLoad(
    () => fetch(cursors.variables.value.after),
    (connection) => {
      rows.value = nodes(connection)
      total.value = connection.totalCount
      cursors.received(connection.pageInfo)
    },
  )
  const { loading, failure } = latest

  /** The current page; `from` is the page shown before, kept when this one fails. */
  async function show(from = cursors.page.value): Promise<void> {
    await latest.load()
    if (failure.value) cursors.page.value = from
  }

  /** From the first page again (after a filter changed or a write). */
  function reload(): Promise<void> {
    cursors.reset()
    return show()
  }

  /** el-pagination's current-change (prev/next): a page is reachable once the one before it was shown. */
  function change(target: number): Promise<void> {
    const from = cursors.page.value
    cursors.goTo(target)
    return show(from)
  }

  return reactive({ rows, total, page: cursors.page, loading, failure, reload, change, refresh: () => show() })
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

/** The cursors of a table paged by el-pagination, for a screen that makes the request
 * itself (its one document asks for more than the list): page n is asked for `after` the
 * end cursor of page n-1. The cursors of pages already seen are kept, so moving back and
 * forth (and to any page up to one past the furthest seen) needs no extra request; a new
 * search or filter starts again at page 1. */
export function useCursors(load: () => unknown, pageSize = 20) {
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
