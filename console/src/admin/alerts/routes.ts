import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'alerts',
    component: () => import('./AlertsPage.vue'),
    meta: { group: 'alerts', title: 'alerts.title', order: 50 },
  },
  {
    path: 'alert-rules',
    component: () => import('./AlertRulesPage.vue'),
    meta: { group: 'alerts', title: 'alerts.rules', order: 51 },
  },
] satisfies ScreenRoute[]
