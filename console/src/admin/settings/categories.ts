// 分类与时限: the category tree as the table shows it (searched, retired ones shown on
// request) and the deadline settings as the form edits them.

export interface Category {
  id: string
  code: string
  name: string
  active: boolean
  children?: Category[]
}

export interface Deadlines {
  simpleHours: number
  complexHours: number
  hardHours: number
}

/** The tree with only what matches: a parent stays when it or one of its sub-categories
 * matches `search` (name or code); retired ones only with `showRetired`. */
export function visibleCategories(tree: Category[], search: string, showRetired: boolean): Category[] {
  const needle = search.trim().toLowerCase()
  const shown = (category: Category) =>
    (showRetired || category.active) &&
    (!needle || category.name.toLowerCase().includes(needle) || category.code.includes(needle))
  const rows: Category[] = []
  for (const parent of tree) {
    if (!showRetired && !parent.active) continue
    const children = (parent.children ?? []).filter(shown)
    if (shown(parent) || children.length) rows.push({ ...parent, children })
  }
  return rows
}

/** Whole days when the hours make whole days (for "360 小时（15 天）"), else null. */
export function wholeDays(hours: number): number | null {
  return hours >= 24 && hours % 24 === 0 ? hours / 24 : null
}

/** The settings as the mutation's input: only the three numbers. */
export function deadlinesInput(village: string, form: Deadlines) {
  return { village, simpleHours: form.simpleHours, complexHours: form.complexHours, hardHours: form.hardHours }
}
