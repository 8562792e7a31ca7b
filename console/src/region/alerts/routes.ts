import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'alerts',
    component: () => import('./SharedAlertsPage.vue'),
    meta: { group: 'regionAlerts', title: 'region.sharedAlerts', order: 20 },
  },
] satisfies ScreenRoute[]
