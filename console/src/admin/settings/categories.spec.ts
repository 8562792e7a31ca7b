import { describe, expect, it } from 'vitest'
import { deadlinesInput, visibleCategories, wholeDays, type Category } from './categories'

const TREE: Category[] = [
  {
    id: 'p',
    code: 'parking',
    name: '停车管理',
    active: true,
    children: [
      { id: 'e', code: 'ebike', name: '电动车充电', active: true },
      { id: 'o', code: 'old_lot', name: '旧停车场', active: false },
    ],
  },
  { id: 'n', code: 'noise', name: '噪音扰民', active: true, children: [] },
  { id: 'x', code: 'retired', name: '已撤分类', active: false, children: [] },
]

const names = (rows: Category[]) => rows.map((row) => [row.name, (row.children ?? []).map((child) => child.name)])

describe('visibleCategories', () => {
  it('hides retired categories unless asked', () => {
    expect(names(visibleCategories(TREE, '', false))).toEqual([
      ['停车管理', ['电动车充电']],
      ['噪音扰民', []],
    ])
    expect(names(visibleCategories(TREE, '', true))).toEqual([
      ['停车管理', ['电动车充电', '旧停车场']],
      ['噪音扰民', []],
      ['已撤分类', []],
    ])
  })

  it('keeps a parent for a matching sub-category, by name or code', () => {
    expect(names(visibleCategories(TREE, '充电', false))).toEqual([['停车管理', ['电动车充电']]])
    expect(names(visibleCategories(TREE, ' NOISE ', false))).toEqual([['噪音扰民', []]])
    expect(visibleCategories(TREE, '没有', true)).toEqual([])
  })
})

describe('deadlines', () => {
  it('speaks of days only where the hours make whole days', () => {
    expect([wholeDays(360), wholeDays(72), wholeDays(8), wholeDays(30)]).toEqual([15, 3, null, null])
  })

  it('sends the three numbers and the village only', () => {
    const settings = { simpleHours: 8, complexHours: 48, hardHours: 240, updatedAt: '2026-12-06T09:00:00+08:00' }
    expect(deadlinesInput('xinghua', settings)).toEqual({
      village: 'xinghua',
      simpleHours: 8,
      complexHours: 48,
      hardHours: 240,
    })
  })
})
