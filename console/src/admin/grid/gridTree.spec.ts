import { describe, expect, it } from 'vitest'
import { gridTree, type GridNode } from './gridTree'

function grid(id: string, code: string, level: string, parent: string | null): GridNode {
  return { id, code, name: id, level, parent: parent ? { id: parent } : null, archivedAt: null, staff: [] }
}

describe('gridTree', () => {
  it('nests micro-grids under grids under the community, in code order', () => {
    const tree = gridTree([
      grid('m2', 'G1-2', 'MICRO', 'g1'),
      grid('g1', 'G1', 'LARGE', 'c'),
      grid('m1', 'G1-1', 'MICRO', 'g1'),
      grid('c', 'C', 'COMMUNITY', null),
    ])
    expect(tree.map((node) => node.id)).toEqual(['c'])
    expect(tree[0].children.map((node) => node.id)).toEqual(['g1'])
    expect(tree[0].children[0].children.map((node) => node.id)).toEqual(['m1', 'm2'])
  })

  it('keeps a grid whose parent is not listed at the top', () => {
    const tree = gridTree([grid('m1', 'G1-1', 'MICRO', 'gone')])
    expect(tree.map((node) => node.id)).toEqual(['m1'])
  })
})
