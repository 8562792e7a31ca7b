import { describe, expect, it } from 'vitest'
import { categoryChoices } from './categories'

const tree = [
  {
    id: 'c1',
    name: '市容环境',
    active: true,
    children: [
      { id: 'c11', name: '垃圾清运', active: true, children: [] },
      { id: 'c12', name: '旧分类', active: false, children: [] },
    ],
  },
  { id: 'c2', name: '停用分类', active: false, children: [] },
]

describe('categoryChoices', () => {
  it('lists each category before its sub-categories, named with their parent', () => {
    expect(categoryChoices(tree).map((choice) => choice.label)).toEqual([
      '市容环境',
      '市容环境 / 垃圾清运',
      '市容环境 / 旧分类',
      '停用分类',
    ])
  })

  it('leaves retired categories out of a new request', () => {
    expect(categoryChoices(tree, true).map((choice) => choice.value)).toEqual(['c1', 'c11'])
  })
})
