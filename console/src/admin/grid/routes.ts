import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'grid',
    component: () => import('./GridPage.vue'),
    meta: { group: 'grid', title: 'grid.tree', order: 30 },
  },
] satisfies ScreenRoute[]
