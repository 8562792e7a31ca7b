import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'activities',
    component: () => import('./ActivitiesPage.vue'),
    meta: { group: 'civility', title: 'civility.activities', order: 70 },
  },
] satisfies ScreenRoute[]
