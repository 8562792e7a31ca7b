import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'devices',
    component: () => import('./DevicesPage.vue'),
    meta: { group: 'alerts', title: 'devices.title', order: 52 },
  },
] satisfies ScreenRoute[]
