import { describe, expect, it } from 'vitest'
import { menu, screens, type ScreenRoute } from './screens'

const page = { render: () => null }

function route(path: string, group: string, order: number, roles?: string[]): ScreenRoute {
  return { path, component: page, meta: { group, title: `${group}.${path}`, order, roles } }
}

describe('the menu', () => {
  it('sorts screens and keeps each group together, in the order of its first screen', () => {
    const routes = screens({
      a: [route('board', 'requests', 40), route('alerts', 'alerts', 50)],
      b: [route('lists', 'requests', 45), route('home', 'dashboard', 10)],
    })
    const entries = menu(routes, new Set(['village-admin']))
    expect(entries.map((entry) => entry.group)).toEqual(['dashboard', 'requests', 'alerts'])
    expect(entries[1].items.map((item) => item.path)).toEqual(['board', 'lists'])
  })

  it('leaves out a screen the reader has no role for', () => {
    const routes = screens({ a: [route('cases', 'mediation', 90, ['village-admin'])] })
    expect(menu(routes, new Set(['grid-worker']))).toEqual([])
    expect(menu(routes, new Set(['village-admin']))).toHaveLength(1)
  })
})
