import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'services',
    component: () => import('./ServicesPage.vue'),
    meta: { title: 'h5.services', order: 40, tab: true, icon: 'service-o' },
  },
  {
    path: 'team-orders',
    component: () => import('./TeamOrdersPage.vue'),
    meta: { title: 'h5Services.teamOrders', order: 41 },
  },
] satisfies ScreenRoute[]
