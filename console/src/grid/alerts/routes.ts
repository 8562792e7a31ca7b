import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'alerts',
    component: () => import('./AlertsTab.vue'),
    meta: { title: 'gridAlerts.title', order: 10, tab: true, icon: 'warning-o' },
  },
] satisfies ScreenRoute[]
