import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'overview',
    component: () => import('./OverviewPage.vue'),
    meta: { group: 'region', title: 'regionOverview.title', order: 10 },
  },
] satisfies ScreenRoute[]
