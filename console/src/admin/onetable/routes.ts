import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'onetable',
    component: () => import('./OneTablePage.vue'),
    meta: { group: 'onetable', title: 'onetable.title', order: 110 },
  },
] satisfies ScreenRoute[]
