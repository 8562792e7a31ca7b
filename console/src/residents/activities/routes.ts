import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'activities',
    component: () => import('./ActivitiesPage.vue'),
    meta: { title: 'h5.activities', order: 30, tab: true, icon: 'flag-o' },
  },
  {
    path: 'points',
    component: () => import('./PointsPage.vue'),
    meta: { title: 'h5Activities.points', order: 31 },
  },
  {
    path: 'rewards',
    component: () => import('./RewardsPage.vue'),
    meta: { title: 'h5Activities.rewardsTitle', order: 32 },
  },
  {
    path: 'check-in-codes',
    component: () => import('./CheckInCodesPage.vue'),
    meta: { title: 'h5Activities.codesTitle', order: 33 },
  },
] satisfies ScreenRoute[]
