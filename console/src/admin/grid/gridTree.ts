// The village's grids as el-tree wants them: 社区 → 网格 → 微网格, children under their
// parent, each level in code order. A grid whose parent is not in the list (archived
// parent left out) stays at the top rather than vanishing.

export interface GridNode {
  id: string
  code: string
  name: string
  level: string
  parent: { id: string } | null
  archivedAt: string | null
  staff: { id: string; name: string; tier: string }[]
}

export interface GridTreeNode extends GridNode {
  children: GridTreeNode[]
}

export function gridTree(grids: GridNode[]): GridTreeNode[] {
  const nodes = new Map(grids.map((grid) => [grid.id, { ...grid, children: [] as GridTreeNode[] }]))
  const roots: GridTreeNode[] = []
  for (const node of nodes.values()) {
    const parent = node.parent ? nodes.get(node.parent.id) : undefined
    ;(parent ? parent.children : roots).push(node)
  }
  const byCode = (a: GridTreeNode, b: GridTreeNode) => a.code.localeCompare(b.code)
  const sort = (list: GridTreeNode[]): GridTreeNode[] => {
    list.sort(byCode)
    list.forEach((node) => sort(node.children))
    return list
  }
  return sort(roots)
}

/** The level a new grid under `parent` has: a community has none above it. */
export const CHILD_LEVEL: Record<string, string> = { COMMUNITY: 'LARGE', LARGE: 'MICRO' }

/** The grid level each staff tier looks after. */
export const TIER_LEVEL: Record<string, string> = {
  GRID_CHIEF: 'COMMUNITY',
  GRID_WORKER: 'LARGE',
  MICRO_GRID_WORKER: 'MICRO',
}
