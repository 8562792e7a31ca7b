// How a screen folder joins the console without editing a shared file: each
// `src/<user>/<domain>/routes.ts` exports its routes, found here by glob. `meta.group`
// places it in the menu (i18n `menu.<group>`), `meta.title` names it (an i18n key),
// `meta.order` sorts; phone tabs use `meta.tab` and `meta.icon` (a Vant icon name).
import type { RouteRecordRaw } from 'vue-router'

export interface ScreenMeta {
  group?: string
  title: string
  order: number
  tab?: boolean
  icon?: string
  /** Only for these roles (any of them); everyone of the console otherwise. */
  roles?: string[]
}

export type ScreenRoute = RouteRecordRaw & { meta: ScreenMeta }

type RouteModules = Record<string, ScreenRoute[]>

export function screens(modules: RouteModules): ScreenRoute[] {
  return Object.values(modules)
    .flat()
    .sort((a, b) => a.meta.order - b.meta.order)
}

export interface MenuEntry {
  group: string
  items: ScreenRoute[]
}

/** The left menu: screens in their groups, groups in the order of their first screen. */
export function menu(routes: ScreenRoute[], roles: Set<string>): MenuEntry[] {
  const groups = new Map<string, ScreenRoute[]>()
  for (const route of routes) {
    if (route.meta.roles && !route.meta.roles.some((role) => roles.has(role))) continue
    const group = route.meta.group ?? String(route.path)
    groups.set(group, [...(groups.get(group) ?? []), route])
  }
  return [...groups].map(([group, items]) => ({ group, items }))
}
