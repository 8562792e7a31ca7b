import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'dashboard',
    component: () => import('./DashboardPage.vue'),
    meta: { group: 'dashboard', title: 'menu.dashboard', order: 10 },
  },
] satisfies ScreenRoute[]
